-- Accounts (SPEC §8): the companies that buy. A lead belongs to at most one account, given
-- (account_explicit) or matched by its email's domain; an opportunity names one or takes its
-- primary contact's. Changes to a lead's or a deal's account reach the journey index through
-- the existing lead and deal change-log triggers.
CREATE TABLE accounts (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT COLLATE "C" NOT NULL UNIQUE,
    name TEXT COLLATE "C" NOT NULL,
    -- Lower-case, the whole host; unique when set.
    domain TEXT COLLATE "C" UNIQUE,
    owner_id BIGINT REFERENCES users (id)
);
CREATE INDEX accounts_owner ON accounts (owner_id);

CREATE TABLE account_attributes (
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    key TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (account_id, key)
);
-- accounts(segment:) and SEGMENT reports look accounts up by an attribute's value.
CREATE INDEX account_attributes_key ON account_attributes (key, value);

ALTER TABLE leads ADD COLUMN account_id BIGINT REFERENCES accounts (id);
ALTER TABLE leads ADD COLUMN account_explicit BOOLEAN NOT NULL DEFAULT FALSE;
-- The host of the lead's email, lower-case (NULL without an email): what domain matching reads.
ALTER TABLE leads ADD COLUMN email_domain TEXT COLLATE "C";
-- As the code derives it: after the last '@', trimmed, without a trailing dot, lower-case.
UPDATE leads SET email_domain = NULLIF(rtrim(btrim(lower(substring(email from '@([^@]*)$'))), '.'), '')
    WHERE email LIKE '%@%';
CREATE INDEX leads_account ON leads (account_id);
CREATE INDEX leads_email_domain ON leads (email_domain);

ALTER TABLE opportunities ADD COLUMN account_id BIGINT REFERENCES accounts (id);
CREATE INDEX opportunities_account ON opportunities (account_id);
-- An account's deals through their primary contacts.
CREATE INDEX opportunities_primary ON opportunities (primary_contact_id);

-- Which leads a plan's statements credit on a deal (SPEC §8 mapping).
ALTER TABLE compensation_plans ADD COLUMN contacts TEXT COLLATE "C" NOT NULL DEFAULT 'CONTACT_ROLES';

-- A change to an account or its attributes: reports read account keys (ACCOUNT, SEGMENT
-- groupings) again. Membership changes are lead changes, logged by the leads' triggers.
CREATE TRIGGER change_log_account_insert AFTER INSERT ON accounts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_new('account', 'id');
CREATE TRIGGER change_log_account_update AFTER UPDATE ON accounts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_both('account', 'id');
CREATE TRIGGER change_log_account_delete AFTER DELETE ON accounts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_old('account', 'id');
CREATE TRIGGER change_log_account_attribute_insert AFTER INSERT ON account_attributes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_new('account', 'account_id');
CREATE TRIGGER change_log_account_attribute_update AFTER UPDATE ON account_attributes
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_both('account', 'account_id');
CREATE TRIGGER change_log_account_attribute_delete AFTER DELETE ON account_attributes
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION change_log_old('account', 'account_id');
