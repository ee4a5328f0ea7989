DROP TABLE frozen_statements;
DROP TABLE closed_periods;
DROP TABLE plan_assignments;
DROP TABLE compensation_plans;
