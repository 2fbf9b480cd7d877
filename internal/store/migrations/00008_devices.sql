-- +goose Up
-- Credentials are sealed with the master key and never returned by the API.
CREATE TABLE devices (
    id              VARCHAR(64)    NOT NULL PRIMARY KEY,
    project_id      VARCHAR(64)    NOT NULL,
    name            VARCHAR(128)   NOT NULL,
    description     VARCHAR(1024)  NOT NULL,
    driver          VARCHAR(32)    NOT NULL,
    address         VARCHAR(2048)  NOT NULL,
    username        VARCHAR(256)   NOT NULL,
    password_enc    VARCHAR(1024)  NOT NULL,
    options         {{.LargeText}} NOT NULL,
    fps             DOUBLE PRECISION NOT NULL,
    width           INTEGER        NOT NULL,
    device_group    VARCHAR(128)   NOT NULL,
    edge_node       VARCHAR(128)   NOT NULL,
    status          VARCHAR(16)    NOT NULL,
    reason          VARCHAR(64)    NOT NULL,
    last_error      VARCHAR(2048)  NOT NULL,
    last_frame_ms   BIGINT         NOT NULL,
    measured_fps    DOUBLE PRECISION NOT NULL,
    status_ms       BIGINT         NOT NULL,
    created_at      BIGINT         NOT NULL,
    updated_at      BIGINT         NOT NULL
){{.TableOptions}};
CREATE INDEX devices_project ON devices (project_id, created_at);
CREATE UNIQUE INDEX devices_project_name ON devices (project_id, name);

-- +goose Down
DROP TABLE devices;
