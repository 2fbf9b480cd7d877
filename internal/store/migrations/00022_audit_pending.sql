-- +goose Up
-- An audited write stages its event here, in its own transaction, unchained:
-- the change and its event commit together without locking the chain head,
-- so concurrent audited writes do not wait for one another. The iam module's
-- chainer moves staged events into audit_events in batches (locking the head,
-- hashing, deleting what it moved); reads chain what is staged first.
--
-- No index but the key, so that staging writes one row and little else (on
-- SQLite the key is the rowid itself): id is chosen by the writer (a random
-- prefix per process and a counter, so unique and, within one process, in
-- staging order) and is how the chainer deletes exactly what it moved (by
-- key, so MariaDB locks those rows only); the key also satisfies servers that
-- require one (sql_require_primary_key, Galera). The table holds only what is
-- not yet chained and is read whole.
CREATE TABLE audit_pending (
    id          {{.Int64Key}},
    time_ms     BIGINT        NOT NULL,
    project_id  VARCHAR(64)   NOT NULL,
    actor       VARCHAR(128)  NOT NULL,
    action      VARCHAR(128)  NOT NULL,
    resource    VARCHAR(256)  NOT NULL,
    result      VARCHAR(128)  NOT NULL,
    source_ip   VARCHAR(64)   NOT NULL,
    request_id  VARCHAR(64)   NOT NULL,
    detail      VARCHAR(4096) NOT NULL
){{.TableOptions}};

-- +goose Down
DROP TABLE audit_pending;
