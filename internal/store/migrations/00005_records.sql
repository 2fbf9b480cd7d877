-- +goose Up
-- The data center (DESIGN §10): records that tasks produce, their retention
-- policies, and resumable uploads. Times are Unix milliseconds.

-- One structured result: a JSON document plus the keys of the objects
-- (crops, frames) it refers to, as a JSON list. Queries are newest first
-- within one of the four indexed dimensions.
CREATE TABLE records (
    id          VARCHAR(64)  NOT NULL PRIMARY KEY,
    project_id  VARCHAR(64)  NOT NULL,
    task_id     VARCHAR(64)  NOT NULL,
    device_id   VARCHAR(128) NOT NULL,
    type        VARCHAR(64)  NOT NULL,
    time_ms     BIGINT       NOT NULL,
    data        {{.LargeText}} NOT NULL,
    objects     {{.LargeText}} NOT NULL,
    created_at  BIGINT       NOT NULL
){{.TableOptions}};
CREATE INDEX records_project_time ON records (project_id, time_ms);
CREATE INDEX records_task_time ON records (task_id, time_ms);
CREATE INDEX records_device_time ON records (device_id, time_ms);
CREATE INDEX records_type_time ON records (type, time_ms);

-- How long a task's records are kept: by age, by count, or both (0 = no
-- limit). The background retention loop enforces them.
CREATE TABLE record_retention (
    task_id     VARCHAR(64) NOT NULL PRIMARY KEY,
    project_id  VARCHAR(64) NOT NULL,
    max_age_ms  BIGINT      NOT NULL,
    max_count   BIGINT      NOT NULL,
    updated_at  BIGINT      NOT NULL
){{.TableOptions}};

-- tus uploads: a row from creation; state is uploading, completed or
-- expired. blob_key and sha256 are set when the upload completes and the
-- object has been moved into the blob store.
CREATE TABLE uploads (
    id           VARCHAR(64)   NOT NULL PRIMARY KEY,
    project_id   VARCHAR(64)   NOT NULL,
    name         VARCHAR(255)  NOT NULL,
    size         BIGINT        NOT NULL,
    content_type VARCHAR(255)  NOT NULL,
    blob_key     VARCHAR(1024) NOT NULL,
    sha256       VARCHAR(64)   NOT NULL,
    state        VARCHAR(16)   NOT NULL,
    created_at   BIGINT        NOT NULL,
    expires_at   BIGINT        NOT NULL
){{.TableOptions}};
CREATE INDEX uploads_project ON uploads (project_id, created_at);
CREATE INDEX uploads_state ON uploads (state, expires_at);

-- +goose Down
DROP TABLE uploads;
DROP TABLE record_retention;
DROP TABLE records;
