-- +goose Up
-- A task binds a flow version to sources and parameters. desired_state is
-- what people asked for (running/stopped); status is what the scheduler
-- and the worker report. epoch grows with every placement, so a worker that
-- lost its node lease can tell it no longer owns the task.
CREATE TABLE tasks (
    id            VARCHAR(64)   NOT NULL PRIMARY KEY,
    project_id    VARCHAR(64)   NOT NULL,
    name          VARCHAR(128)  NOT NULL,
    description   VARCHAR(1024) NOT NULL,
    flow_id       VARCHAR(64)   NOT NULL,
    flow_version  BIGINT        NOT NULL,
    sources       {{.LargeText}} NOT NULL,
    parameters    {{.LargeText}} NOT NULL,
    constraints   VARCHAR(4096) NOT NULL,
    desired_state VARCHAR(16)   NOT NULL,
    status        VARCHAR(16)   NOT NULL,
    reason        VARCHAR(1024) NOT NULL,
    node_id       VARCHAR(64)   NOT NULL,
    epoch         BIGINT        NOT NULL,
    stats         {{.LargeText}} NOT NULL,
    created_at    BIGINT        NOT NULL,
    updated_at    BIGINT        NOT NULL
){{.TableOptions}};
CREATE INDEX tasks_project ON tasks (project_id, created_at);
CREATE INDEX tasks_node ON tasks (node_id);
CREATE INDEX tasks_flow ON tasks (flow_id);

-- Workers register here and renew their lease by heartbeat.
CREATE TABLE nodes (
    id               VARCHAR(64)   NOT NULL PRIMARY KEY,
    name             VARCHAR(128)  NOT NULL,
    labels           VARCHAR(4096) NOT NULL,
    capacity         INTEGER       NOT NULL,
    gpus             VARCHAR(1024) NOT NULL,
    lease_expires_ms BIGINT        NOT NULL,
    started_at       BIGINT        NOT NULL,
    heartbeat_ms     BIGINT        NOT NULL
){{.TableOptions}};

-- Named leases elect one active instance of a role (the scheduler).
CREATE TABLE leases (
    name       VARCHAR(64)  NOT NULL PRIMARY KEY,
    holder     VARCHAR(128) NOT NULL,
    expires_ms BIGINT       NOT NULL,
    epoch      BIGINT       NOT NULL
){{.TableOptions}};

CREATE TABLE task_events (
    id       VARCHAR(64)   NOT NULL PRIMARY KEY,
    task_id  VARCHAR(64)   NOT NULL,
    time_ms  BIGINT        NOT NULL,
    type     VARCHAR(64)   NOT NULL,
    node_id  VARCHAR(64)   NOT NULL,
    message  VARCHAR(2048) NOT NULL
){{.TableOptions}};
CREATE INDEX task_events_task ON task_events (task_id, time_ms);

-- +goose Down
DROP TABLE task_events;
DROP TABLE leases;
DROP TABLE nodes;
DROP TABLE tasks;
