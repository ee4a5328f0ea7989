-- The data version: one row bumped inside every write transaction, just before it commits.
-- Writers serialise on this row, so versions follow commit order (audit ids follow the order
-- in which ids were taken, which on PostgreSQL is not the order in which writes commit), and a
-- report cached at version v has seen every write that committed up to v.
CREATE TABLE data_version (
    id INTEGER PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO data_version (id, version) VALUES (1, 0);
