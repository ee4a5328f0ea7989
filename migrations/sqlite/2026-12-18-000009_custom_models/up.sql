-- Custom attribution models as data (SPEC §4b): a model is a key and a name; every edit of its
-- role weights is a new version (decimal strings, summing to 1), so a report or statement can
-- say which version it used.
CREATE TABLE attribution_models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);

CREATE TABLE attribution_model_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id BIGINT NOT NULL REFERENCES attribution_models (id),
    version INTEGER NOT NULL,
    first_weight TEXT NOT NULL,
    last_weight TEXT NOT NULL,
    mql_weight TEXT NOT NULL,
    opportunity_weight TEXT NOT NULL,
    close_weight TEXT NOT NULL,
    middle_weight TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (model_id, version)
);

-- A plan on a custom model names it by key (model = 'CUSTOM') and follows its current version.
ALTER TABLE compensation_plans ADD COLUMN custom_model TEXT;
