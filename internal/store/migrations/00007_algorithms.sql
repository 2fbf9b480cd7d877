-- +goose Up
CREATE TABLE algorithms (
    id              VARCHAR(64)   NOT NULL PRIMARY KEY,
    project_id      VARCHAR(64)   NOT NULL,
    name            VARCHAR(128)  NOT NULL,
    description     VARCHAR(1024) NOT NULL,
    current_version VARCHAR(64)   NOT NULL,
    created_at      BIGINT        NOT NULL,
    updated_at      BIGINT        NOT NULL
){{.TableOptions}};
CREATE UNIQUE INDEX algorithms_project_name ON algorithms (project_id, name);

-- A version's definition is the runtime's JSON (contract, protocol,
-- runtime, endpoints, package, resources...). desired_state says whether
-- every process with an algorithm runtime should run it.
CREATE TABLE algorithm_versions (
    algorithm_id  VARCHAR(64)    NOT NULL,
    version       VARCHAR(64)    NOT NULL,
    definition    {{.LargeText}} NOT NULL,
    desired_state VARCHAR(16)    NOT NULL,
    created_at    BIGINT         NOT NULL,
    updated_at    BIGINT         NOT NULL,
    PRIMARY KEY (algorithm_id, version)
){{.TableOptions}};

-- +goose Down
DROP TABLE algorithm_versions;
DROP TABLE algorithms;
