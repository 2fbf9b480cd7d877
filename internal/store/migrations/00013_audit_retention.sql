-- +goose Up
-- Retention removes the oldest audit events and leaves this checkpoint: the
-- sequence number and hash of the last removed event, when, and an
-- HMAC-SHA256 of them under a key derived from the master key. The chain
-- then verifies from the checkpoint; a checkpoint edited in the store does
-- not verify. One row; seq 0 with empty hash and mac means no truncation yet.
CREATE TABLE audit_checkpoint (
    id      INTEGER     NOT NULL PRIMARY KEY,
    seq     BIGINT      NOT NULL,
    hash    VARCHAR(64) NOT NULL,
    time_ms BIGINT      NOT NULL,
    mac     VARCHAR(64) NOT NULL
){{.TableOptions}};
INSERT INTO audit_checkpoint (id, seq, hash, time_ms, mac) VALUES (1, 0, '', 0, '');

-- No index for DescribeAuditEvents' Actor/Action/Resource/Result filters:
-- every index is written on every append, and the log is written far more
-- than searched. Searches narrow by time (audit_events_time) or project
-- (audit_events_project) and filter the rest.

-- +goose Down
DROP TABLE audit_checkpoint;
