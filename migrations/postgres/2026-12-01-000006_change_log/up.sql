-- The change log: which lead, deal or campaign a committed write touched, written by triggers in
-- the same transaction as the change itself, so no write path (mutation, import, generate) can
-- forget it. Every server instance tails it in id order to keep its in-memory journey index
-- current; an entry names an entity, never its values, so replaying one twice is harmless.
-- Ids are taken before commit, so they may become visible out of order: readers keep a low
-- watermark below the oldest id they have not seen (see service::index).
CREATE TABLE change_log (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    entity_id BIGINT NOT NULL,
    logged_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);

-- Statement-level triggers with transition tables: a multi-row insert logs each entity once.
CREATE FUNCTION change_log_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('INSERT INTO change_log (kind, entity_id) SELECT DISTINCT %L, %I FROM new_rows',
                   TG_ARGV[0], TG_ARGV[1]);
    RETURN NULL;
END $$;
CREATE FUNCTION change_log_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('INSERT INTO change_log (kind, entity_id) SELECT DISTINCT %L, %I FROM old_rows',
                   TG_ARGV[0], TG_ARGV[1]);
    RETURN NULL;
END $$;
CREATE FUNCTION change_log_both() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('INSERT INTO change_log (kind, entity_id) SELECT %L, e FROM '
                   '(SELECT %I AS e FROM new_rows UNION SELECT %I FROM old_rows) AS changed',
                   TG_ARGV[0], TG_ARGV[1], TG_ARGV[1]);
    RETURN NULL;
END $$;

CREATE TRIGGER change_log_lead_insert AFTER INSERT ON leads
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_new('lead', 'id');
CREATE TRIGGER change_log_lead_update AFTER UPDATE ON leads
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_both('lead', 'id');
CREATE TRIGGER change_log_lead_delete AFTER DELETE ON leads
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_old('lead', 'id');
CREATE TRIGGER change_log_touch_insert AFTER INSERT ON touchpoints
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_new('lead', 'lead_id');
CREATE TRIGGER change_log_touch_update AFTER UPDATE ON touchpoints
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_both('lead', 'lead_id');
CREATE TRIGGER change_log_touch_delete AFTER DELETE ON touchpoints
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_old('lead', 'lead_id');
CREATE TRIGGER change_log_deal_insert AFTER INSERT ON opportunities
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_new('deal', 'id');
CREATE TRIGGER change_log_deal_update AFTER UPDATE ON opportunities
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_both('deal', 'id');
CREATE TRIGGER change_log_deal_delete AFTER DELETE ON opportunities
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_old('deal', 'id');
CREATE TRIGGER change_log_contact_insert AFTER INSERT ON opportunity_contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_new('deal', 'opportunity_id');
CREATE TRIGGER change_log_contact_update AFTER UPDATE ON opportunity_contacts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_both('deal', 'opportunity_id');
CREATE TRIGGER change_log_contact_delete AFTER DELETE ON opportunity_contacts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_old('deal', 'opportunity_id');
CREATE TRIGGER change_log_revenue_insert AFTER INSERT ON revenue_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_new('deal', 'opportunity_id');
CREATE TRIGGER change_log_revenue_update AFTER UPDATE ON revenue_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_both('deal', 'opportunity_id');
CREATE TRIGGER change_log_revenue_delete AFTER DELETE ON revenue_events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_old('deal', 'opportunity_id');
CREATE TRIGGER change_log_campaign_insert AFTER INSERT ON campaigns
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_new('campaign', 'id');
CREATE TRIGGER change_log_campaign_update AFTER UPDATE ON campaigns
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_both('campaign', 'id');
CREATE TRIGGER change_log_campaign_delete AFTER DELETE ON campaigns
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_old('campaign', 'id');
CREATE TRIGGER change_log_cost_insert AFTER INSERT ON campaign_costs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_new('campaign', 'campaign_id');
CREATE TRIGGER change_log_cost_update AFTER UPDATE ON campaign_costs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_both('campaign', 'campaign_id');
CREATE TRIGGER change_log_cost_delete AFTER DELETE ON campaign_costs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_old('campaign', 'campaign_id');
