-- The shared lead definition (SPEC §3): scoring rules held as data.
CREATE TABLE scoring_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    external_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    field TEXT,
    operator TEXT,
    value TEXT,
    touch_kind TEXT,
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
