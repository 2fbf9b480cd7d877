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

-- DescribeAuditEvents filters by actor, action, resource and result, oldest
-- first; the time range uses audit_events_time and the project
-- audit_events_project (00001).
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_resource ON audit_events (resource, seq);
CREATE INDEX audit_events_result ON audit_events (result, seq);

-- +goose Down
-- The indexes stay: the engines spell DROP INDEX differently (MySQL needs
-- ON table) and no migration here is ever run down.
DROP TABLE audit_checkpoint;
