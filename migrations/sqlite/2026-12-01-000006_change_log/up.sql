-- The change log: which lead, deal or campaign a committed write touched, written by triggers in
-- the same transaction as the change itself, so no write path (mutation, import, generate) can
-- forget it. Every server instance tails it in id order to keep its in-memory journey index
-- current; an entry names an entity, never its values, so replaying one twice is harmless.
CREATE TABLE change_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    entity_id BIGINT NOT NULL,
    logged_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TRIGGER change_log_lead_insert AFTER INSERT ON leads
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('lead', NEW.id); END;
CREATE TRIGGER change_log_lead_update AFTER UPDATE ON leads
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('lead', NEW.id); END;
CREATE TRIGGER change_log_lead_delete AFTER DELETE ON leads
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('lead', OLD.id); END;

CREATE TRIGGER change_log_touch_insert AFTER INSERT ON touchpoints
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('lead', NEW.lead_id); END;
CREATE TRIGGER change_log_touch_update AFTER UPDATE ON touchpoints
BEGIN
    INSERT INTO change_log (kind, entity_id) VALUES ('lead', NEW.lead_id);
    INSERT INTO change_log (kind, entity_id) SELECT 'lead', OLD.lead_id WHERE OLD.lead_id <> NEW.lead_id;
END;
CREATE TRIGGER change_log_touch_delete AFTER DELETE ON touchpoints
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('lead', OLD.lead_id); END;

CREATE TRIGGER change_log_deal_insert AFTER INSERT ON opportunities
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('deal', NEW.id); END;
CREATE TRIGGER change_log_deal_update AFTER UPDATE ON opportunities
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('deal', NEW.id); END;
CREATE TRIGGER change_log_deal_delete AFTER DELETE ON opportunities
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('deal', OLD.id); END;

CREATE TRIGGER change_log_contact_insert AFTER INSERT ON opportunity_contacts
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('deal', NEW.opportunity_id); END;
CREATE TRIGGER change_log_contact_update AFTER UPDATE ON opportunity_contacts
BEGIN
    INSERT INTO change_log (kind, entity_id) VALUES ('deal', NEW.opportunity_id);
    INSERT INTO change_log (kind, entity_id) SELECT 'deal', OLD.opportunity_id WHERE OLD.opportunity_id <> NEW.opportunity_id;
END;
CREATE TRIGGER change_log_contact_delete AFTER DELETE ON opportunity_contacts
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('deal', OLD.opportunity_id); END;

CREATE TRIGGER change_log_revenue_insert AFTER INSERT ON revenue_events
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('deal', NEW.opportunity_id); END;
CREATE TRIGGER change_log_revenue_update AFTER UPDATE ON revenue_events
BEGIN
    INSERT INTO change_log (kind, entity_id) VALUES ('deal', NEW.opportunity_id);
    INSERT INTO change_log (kind, entity_id) SELECT 'deal', OLD.opportunity_id WHERE OLD.opportunity_id <> NEW.opportunity_id;
END;
CREATE TRIGGER change_log_revenue_delete AFTER DELETE ON revenue_events
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('deal', OLD.opportunity_id); END;

CREATE TRIGGER change_log_campaign_insert AFTER INSERT ON campaigns
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('campaign', NEW.id); END;
CREATE TRIGGER change_log_campaign_update AFTER UPDATE ON campaigns
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('campaign', NEW.id); END;
CREATE TRIGGER change_log_campaign_delete AFTER DELETE ON campaigns
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('campaign', OLD.id); END;
CREATE TRIGGER change_log_cost_insert AFTER INSERT ON campaign_costs
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('campaign', NEW.campaign_id); END;
CREATE TRIGGER change_log_cost_update AFTER UPDATE ON campaign_costs
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('campaign', NEW.campaign_id); END;
CREATE TRIGGER change_log_cost_delete AFTER DELETE ON campaign_costs
BEGIN INSERT INTO change_log (kind, entity_id) VALUES ('campaign', OLD.campaign_id); END;
