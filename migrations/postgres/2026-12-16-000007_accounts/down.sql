ALTER TABLE compensation_plans DROP COLUMN contacts;
DROP INDEX opportunities_primary;
ALTER TABLE opportunities DROP COLUMN account_id;
ALTER TABLE leads DROP COLUMN email_domain;
ALTER TABLE leads DROP COLUMN account_explicit;
ALTER TABLE leads DROP COLUMN account_id;
DROP TABLE account_attributes;
DROP TABLE accounts;
