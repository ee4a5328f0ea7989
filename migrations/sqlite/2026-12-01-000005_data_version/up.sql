-- The data version report caches are keyed by: one row every write bumps once its changes
-- are committed (on SQLite as the write transaction's last statement, on PostgreSQL right after
-- the commit), before the write is acknowledged. A report that read version v loads facts that
-- include every write counted in v (audit ids follow the order in which ids were taken, which
-- on PostgreSQL is not the order in which writes commit).
CREATE TABLE data_version (
    id INTEGER PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO data_version (id, version) VALUES (1, 0);
