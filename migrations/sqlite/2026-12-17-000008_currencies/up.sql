-- Currencies (SPEC §9). Dated exchange rates: `rate` is reporting-currency units per one unit
-- of `currency`, an exact decimal string (up to 10^9 with 10 fraction digits does not fit a
-- BIGINT once scaled), in force from `effective_from` until the next row's.
CREATE TABLE exchange_rates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    currency TEXT NOT NULL,
    effective_from DATE NOT NULL,
    rate TEXT NOT NULL,
    UNIQUE (currency, effective_from)
);

-- Each amount keeps the currency it was written in and the amount in that currency's minor
-- units; `amount_cents` stays the reporting-currency value every report splits. NULL in both
-- means the amount was written in the reporting currency (the one the settings record).
ALTER TABLE opportunities ADD COLUMN currency TEXT;
ALTER TABLE opportunities ADD COLUMN original_amount BIGINT;
ALTER TABLE revenue_events ADD COLUMN currency TEXT;
ALTER TABLE revenue_events ADD COLUMN original_amount BIGINT;
ALTER TABLE campaign_costs ADD COLUMN currency TEXT;
ALTER TABLE campaign_costs ADD COLUMN original_amount BIGINT;

-- A rate change re-values the amounts of its currency dated in its span.
CREATE INDEX opportunities_currency ON opportunities (currency, created_at) WHERE currency IS NOT NULL;
CREATE INDEX revenue_events_currency ON revenue_events (currency, booked_on) WHERE currency IS NOT NULL;
CREATE INDEX campaign_costs_currency ON campaign_costs (currency, incurred_on) WHERE currency IS NOT NULL;
