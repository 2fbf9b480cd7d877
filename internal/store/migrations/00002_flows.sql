-- +goose Up
CREATE TABLE flows (
    id             VARCHAR(64)   NOT NULL PRIMARY KEY,
    project_id     VARCHAR(64)   NOT NULL,
    name           VARCHAR(128)  NOT NULL,
    description    VARCHAR(1024) NOT NULL,
    latest_version BIGINT        NOT NULL,
    created_at     BIGINT        NOT NULL,
    updated_at     BIGINT        NOT NULL
){{.TableOptions}};
CREATE UNIQUE INDEX flows_project_name ON flows (project_id, name);

-- Versions are immutable: a change to a flow's document inserts a new row.
CREATE TABLE flow_versions (
    flow_id    VARCHAR(64)   NOT NULL,
    version    BIGINT        NOT NULL,
    document   {{.LargeText}} NOT NULL,
    digest     VARCHAR(64)   NOT NULL,
    comment    VARCHAR(1024) NOT NULL,
    created_by VARCHAR(128)  NOT NULL,
    created_at BIGINT        NOT NULL,
    PRIMARY KEY (flow_id, version)
){{.TableOptions}};

-- +goose Down
DROP TABLE flow_versions;
DROP TABLE flows;
