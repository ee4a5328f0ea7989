ALTER TABLE compensation_plans DROP COLUMN custom_model;
DROP TABLE attribution_model_versions;
DROP TABLE attribution_models;
