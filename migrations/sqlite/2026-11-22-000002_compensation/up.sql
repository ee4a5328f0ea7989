-- Marketer compensation (SPEC §5): plans, who is on which plan from when, closed periods
-- and the statements frozen when they were closed.
CREATE TABLE compensation_plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    external_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    model TEXT NOT NULL,
    -- Rates are exact decimal strings ("0.015"), never floats.
    revenue_rate TEXT NOT NULL,
    quota_cents BIGINT,
    accelerator_rate TEXT,
    qualified_lead_bonus_cents BIGINT NOT NULL,
    cap_cents BIGINT,
    clawback_days INTEGER NOT NULL
);

CREATE TABLE plan_assignments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id),
    plan_id BIGINT NOT NULL REFERENCES compensation_plans (id),
    effective_from DATE NOT NULL,
    UNIQUE (user_id, effective_from)
);

CREATE TABLE closed_periods (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    period_from DATE NOT NULL,
    period_to DATE NOT NULL,
    closed_at TIMESTAMP NOT NULL,
    closed_by TEXT NOT NULL,
    statements INTEGER NOT NULL
);

-- A statement as computed at close, stored whole (JSON) so it never changes afterwards.
CREATE TABLE frozen_statements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    closed_period_id BIGINT NOT NULL REFERENCES closed_periods (id),
    user_external_id TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (closed_period_id, user_external_id)
);
