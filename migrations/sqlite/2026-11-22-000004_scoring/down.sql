DROP INDEX leads_source_campaign;
ALTER TABLE leads DROP COLUMN source_campaign_id;
DROP TABLE scoring_rules;
