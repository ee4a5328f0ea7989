-- The foundation: the entities of SPEC §2. Money is BIGINT minor units, times are UTC.
-- Text is compared byte-wise (COLLATE "C"), as on SQLite, so that orderings and cursors agree.
CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT COLLATE "C" NOT NULL UNIQUE,
    name TEXT COLLATE "C" NOT NULL,
    email TEXT COLLATE "C",
    role TEXT COLLATE "C" NOT NULL
);

CREATE TABLE campaigns (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT COLLATE "C" NOT NULL UNIQUE,
    name TEXT COLLATE "C" NOT NULL,
    channel TEXT COLLATE "C" NOT NULL,
    owner_id BIGINT REFERENCES users (id),
    starts_on DATE,
    ends_on DATE,
    budget_cents BIGINT
);
CREATE INDEX campaigns_owner ON campaigns (owner_id);
CREATE INDEX campaigns_channel ON campaigns (channel, external_id);

CREATE TABLE campaign_costs (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT COLLATE "C" NOT NULL UNIQUE,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    amount_cents BIGINT NOT NULL,
    incurred_on DATE NOT NULL
);
CREATE INDEX campaign_costs_campaign ON campaign_costs (campaign_id, incurred_on);

CREATE TABLE leads (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT COLLATE "C" NOT NULL UNIQUE,
    email TEXT COLLATE "C",
    full_name TEXT COLLATE "C",
    company TEXT COLLATE "C",
    title TEXT COLLATE "C",
    stage TEXT COLLATE "C" NOT NULL,
    score INTEGER NOT NULL DEFAULT 0,
    owner_id BIGINT REFERENCES users (id),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX leads_stage ON leads (stage, external_id);
CREATE INDEX leads_created ON leads (created_at);
CREATE INDEX leads_owner ON leads (owner_id);

CREATE TABLE lead_attributes (
    lead_id BIGINT NOT NULL REFERENCES leads (id),
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (lead_id, key)
);

CREATE TABLE touchpoints (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT COLLATE "C" NOT NULL UNIQUE,
    lead_id BIGINT NOT NULL REFERENCES leads (id),
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    kind TEXT COLLATE "C" NOT NULL,
    occurred_at TIMESTAMP NOT NULL
);
CREATE INDEX touchpoints_lead ON touchpoints (lead_id, occurred_at);
CREATE INDEX touchpoints_campaign ON touchpoints (campaign_id, lead_id);
CREATE INDEX touchpoints_time ON touchpoints (occurred_at);

-- One row per move; a forward skip writes one row per skipped stage at the same instant,
-- all carrying the request's external_id (a replay of that external_id is a no-op).
CREATE TABLE stage_transitions (
    id BIGSERIAL PRIMARY KEY,
    lead_id BIGINT NOT NULL REFERENCES leads (id),
    external_id TEXT COLLATE "C",
    from_stage TEXT COLLATE "C",
    to_stage TEXT COLLATE "C" NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    actor TEXT COLLATE "C" NOT NULL,
    reason TEXT COLLATE "C"
);
CREATE INDEX stage_transitions_lead ON stage_transitions (lead_id, occurred_at);
CREATE INDEX stage_transitions_external ON stage_transitions (external_id);
CREATE INDEX stage_transitions_to ON stage_transitions (to_stage, occurred_at);

CREATE TABLE opportunities (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT COLLATE "C" NOT NULL UNIQUE,
    name TEXT COLLATE "C" NOT NULL,
    primary_contact_id BIGINT NOT NULL REFERENCES leads (id),
    owner_id BIGINT REFERENCES users (id),
    amount_cents BIGINT NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    created_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP
);
CREATE INDEX opportunities_status ON opportunities (status, external_id);
CREATE INDEX opportunities_owner ON opportunities (owner_id);
CREATE INDEX opportunities_created ON opportunities (created_at);

-- Every contact of a deal, the primary one at position 0.
CREATE TABLE opportunity_contacts (
    opportunity_id BIGINT NOT NULL REFERENCES opportunities (id),
    lead_id BIGINT NOT NULL REFERENCES leads (id),
    position INTEGER NOT NULL,
    PRIMARY KEY (opportunity_id, lead_id)
);
CREATE INDEX opportunity_contacts_lead ON opportunity_contacts (lead_id);

CREATE TABLE revenue_events (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT COLLATE "C" NOT NULL UNIQUE,
    opportunity_id BIGINT NOT NULL REFERENCES opportunities (id),
    amount_cents BIGINT NOT NULL,
    booked_on DATE NOT NULL
);
CREATE INDEX revenue_events_opportunity ON revenue_events (opportunity_id);
CREATE INDEX revenue_events_booked ON revenue_events (booked_on);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    actor TEXT COLLATE "C" NOT NULL,
    role TEXT COLLATE "C" NOT NULL,
    operation TEXT COLLATE "C" NOT NULL,
    external_id TEXT COLLATE "C",
    detail TEXT COLLATE "C"
);

-- Small company-wide settings (the MQL threshold, ...), one row per key.
CREATE TABLE settings (
    key TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
);
