-- Marketer compensation (SPEC §5): plans, who is on which plan from when, closed periods
-- and the statements frozen when they were closed.
CREATE TABLE compensation_plans (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT COLLATE "C" NOT NULL UNIQUE,
    name TEXT COLLATE "C" NOT NULL,
    model TEXT COLLATE "C" NOT NULL,
    -- Rates are exact decimal strings ("0.015"), never floats.
    revenue_rate TEXT COLLATE "C" NOT NULL,
    quota_cents BIGINT,
    accelerator_rate TEXT COLLATE "C",
    qualified_lead_bonus_cents BIGINT NOT NULL,
    cap_cents BIGINT,
    clawback_days INTEGER NOT NULL
);

CREATE TABLE plan_assignments (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    plan_id BIGINT NOT NULL REFERENCES compensation_plans (id),
    effective_from DATE NOT NULL,
    UNIQUE (user_id, effective_from)
);

CREATE TABLE closed_periods (
    id BIGSERIAL PRIMARY KEY,
    period_from DATE NOT NULL,
    period_to DATE NOT NULL,
    closed_at TIMESTAMP NOT NULL,
    closed_by TEXT COLLATE "C" NOT NULL,
    statements INTEGER NOT NULL
);

-- A statement as computed at close, stored whole (JSON) so it never changes afterwards.
CREATE TABLE frozen_statements (
    id BIGSERIAL PRIMARY KEY,
    closed_period_id BIGINT NOT NULL REFERENCES closed_periods (id),
    user_external_id TEXT COLLATE "C" NOT NULL,
    body TEXT COLLATE "C" NOT NULL,
    UNIQUE (closed_period_id, user_external_id)
);
