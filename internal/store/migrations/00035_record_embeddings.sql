-- +goose Up
-- Embeddings of records (issue #29): a face's descriptor, kept beside its
-- record rather than in the record's JSON document (which responses
-- return), and the source the vector index is rebuilt from. vector is
-- the little-endian float32 values, base64: portable text on every
-- dialect, a third of the size of a JSON list.
CREATE TABLE record_embeddings (
    record_id   VARCHAR(64)  NOT NULL PRIMARY KEY,
    project_id  VARCHAR(64)  NOT NULL,
    task_id     VARCHAR(64)  NOT NULL,
    device_id   VARCHAR(128) NOT NULL,
    type        VARCHAR(64)  NOT NULL,
    time_ms     BIGINT       NOT NULL,
    dim         INTEGER      NOT NULL,
    vector      {{.LargeText}} NOT NULL
){{.TableOptions}};

-- +goose Down
DROP TABLE record_embeddings;
