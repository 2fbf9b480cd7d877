-- +goose Up
-- Edge nodes: sites that join the cloud over a TLS leaf node link. Only
-- hashes of the one-time join token and of the credential it was exchanged
-- for are kept. The status columns are what the node last reported.
CREATE TABLE edge_nodes (
    id               VARCHAR(64)    NOT NULL PRIMARY KEY,
    project_id       VARCHAR(64)    NOT NULL,
    name             VARCHAR(128)   NOT NULL,
    description      VARCHAR(1024)  NOT NULL,
    token_hash       VARCHAR(64)    NOT NULL,
    credential_hash  VARCHAR(64)    NOT NULL,
    joined_ms        BIGINT         NOT NULL,
    last_seen_ms     BIGINT         NOT NULL,
    latency_us       BIGINT         NOT NULL,
    buffer_depth     BIGINT         NOT NULL,
    buffer_bytes     BIGINT         NOT NULL,
    buffer_oldest_ms BIGINT         NOT NULL,
    forwarded        BIGINT         NOT NULL,
    versions         {{.LargeText}} NOT NULL,
    created_at       BIGINT         NOT NULL,
    updated_at       BIGINT         NOT NULL
){{.TableOptions}};
CREATE INDEX edge_nodes_project ON edge_nodes (project_id, created_at);
CREATE UNIQUE INDEX edge_nodes_project_name ON edge_nodes (project_id, name);

-- The cloud's leaf listener: the address edges dial and the SHA-256 of its
-- certificate, which join tokens pin. One row per hub name.
CREATE TABLE edge_hubs (
    name        VARCHAR(64)  NOT NULL PRIMARY KEY,
    leaf_url    VARCHAR(512) NOT NULL,
    fingerprint VARCHAR(64)  NOT NULL,
    updated_at  BIGINT       NOT NULL
){{.TableOptions}};

-- +goose Down
DROP TABLE edge_hubs;
DROP TABLE edge_nodes;
