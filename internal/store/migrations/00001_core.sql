-- +goose Up
-- Every resource row carries its project from the first migration (DESIGN §2).
-- Times are Unix milliseconds (BIGINT) so that the three engines agree exactly.
CREATE TABLE projects (
    id          VARCHAR(64)  NOT NULL PRIMARY KEY,
    name        VARCHAR(128) NOT NULL,
    description VARCHAR(1024) NOT NULL,
    created_at  BIGINT       NOT NULL,
    updated_at  BIGINT       NOT NULL
){{.TableOptions}};
CREATE UNIQUE INDEX projects_name ON projects (name);
INSERT INTO projects (id, name, description, created_at, updated_at)
VALUES ('default', 'default', 'The project every installation starts with.', 0, 0);

CREATE TABLE users (
    id            VARCHAR(64)  NOT NULL PRIMARY KEY,
    name          VARCHAR(128) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    role          VARCHAR(32)  NOT NULL,
    status        VARCHAR(16)  NOT NULL,
    created_at    BIGINT       NOT NULL,
    updated_at    BIGINT       NOT NULL
){{.TableOptions}};
CREATE UNIQUE INDEX users_name ON users (name);

CREATE TABLE apps (
    id          VARCHAR(64)   NOT NULL PRIMARY KEY,
    project_id  VARCHAR(64)   NOT NULL,
    name        VARCHAR(128)  NOT NULL,
    description VARCHAR(1024) NOT NULL,
    role        VARCHAR(32)   NOT NULL,
    status      VARCHAR(16)   NOT NULL,
    created_at  BIGINT        NOT NULL,
    updated_at  BIGINT        NOT NULL
){{.TableOptions}};
CREATE INDEX apps_project ON apps (project_id, created_at);

CREATE TABLE app_keys (
    secret_id      VARCHAR(64)  NOT NULL PRIMARY KEY,
    app_id         VARCHAR(64)  NOT NULL,
    project_id     VARCHAR(64)  NOT NULL,
    secret_key_enc VARCHAR(512) NOT NULL,
    status         VARCHAR(16)  NOT NULL,
    created_at     BIGINT       NOT NULL,
    last_used_at   BIGINT       NOT NULL
){{.TableOptions}};
CREATE INDEX app_keys_app ON app_keys (app_id);

-- Audit events are append-only and hash-chained: each row's hash covers the
-- previous row's hash, so removing or editing a row breaks the chain.
CREATE TABLE audit_events (
    seq         BIGINT        NOT NULL PRIMARY KEY,
    time_ms     BIGINT        NOT NULL,
    project_id  VARCHAR(64)   NOT NULL,
    actor       VARCHAR(128)  NOT NULL,
    action      VARCHAR(128)  NOT NULL,
    resource    VARCHAR(256)  NOT NULL,
    result      VARCHAR(128)  NOT NULL,
    source_ip   VARCHAR(64)   NOT NULL,
    request_id  VARCHAR(64)   NOT NULL,
    detail      VARCHAR(4096) NOT NULL,
    prev_hash   VARCHAR(64)   NOT NULL,
    hash        VARCHAR(64)   NOT NULL
){{.TableOptions}};
CREATE INDEX audit_events_time ON audit_events (time_ms);
CREATE INDEX audit_events_project ON audit_events (project_id, seq);

-- One row per chain; holding it FOR UPDATE serializes appends across replicas.
CREATE TABLE audit_head (
    id   INTEGER     NOT NULL PRIMARY KEY,
    seq  BIGINT      NOT NULL,
    hash VARCHAR(64) NOT NULL
){{.TableOptions}};
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');

-- Small named values the platform keeps (bootstrap markers, cluster id).
CREATE TABLE settings (
    name       VARCHAR(128)  NOT NULL PRIMARY KEY,
    value      VARCHAR(4096) NOT NULL,
    updated_at BIGINT        NOT NULL
){{.TableOptions}};

-- +goose Down
DROP TABLE settings;
DROP TABLE audit_head;
DROP TABLE audit_events;
DROP TABLE app_keys;
DROP TABLE apps;
DROP TABLE users;
DROP TABLE projects;
