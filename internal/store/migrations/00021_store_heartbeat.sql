-- +goose Up
-- One row that readiness rewrites to tell whether the store takes writes
-- (a full disk, a read-only replica); beat_ms is when it last did.
CREATE TABLE store_heartbeat (
    id      INTEGER NOT NULL PRIMARY KEY,
    beat_ms BIGINT  NOT NULL
){{.TableOptions}};
INSERT INTO store_heartbeat (id, beat_ms) VALUES (1, 0);

-- +goose Down
DROP TABLE store_heartbeat;
