-- The shared lead definition (SPEC §3): scoring rules held as data.
CREATE TABLE scoring_rules (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT COLLATE "C" NOT NULL UNIQUE,
    name TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    field TEXT COLLATE "C",
    operator TEXT COLLATE "C",
    value TEXT COLLATE "C",
    touch_kind TEXT COLLATE "C",
    points INTEGER NOT NULL,
    max_points INTEGER,
    active BOOLEAN NOT NULL
);

-- The campaign of each lead's earliest touchpoint (time, then externalId): the campaign that
-- sourced it, kept as touchpoints are written.
ALTER TABLE leads ADD COLUMN source_campaign_id BIGINT REFERENCES campaigns (id);
UPDATE leads SET source_campaign_id = (
    SELECT t.campaign_id FROM touchpoints t WHERE t.lead_id = leads.id
    ORDER BY t.occurred_at, t.external_id LIMIT 1
);
CREATE INDEX leads_source_campaign ON leads (source_campaign_id);
