-- +goose Up
-- Tasks the cloud places on an edge node: the node runs them, never a cloud
-- worker. edge_version is the flow version the edge reports running and
-- edge_error the last error it reported applying the task (a pushed version
-- that did not compile there, say); status and reason are the edge's.
ALTER TABLE tasks ADD COLUMN edge_node VARCHAR(64) NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN edge_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN edge_error VARCHAR(1024) NOT NULL DEFAULT '';
CREATE INDEX tasks_edge_node ON tasks (edge_node);

-- +goose Down
{{dropIndex "tasks_edge_node" "tasks"}};
ALTER TABLE tasks DROP COLUMN edge_error;
ALTER TABLE tasks DROP COLUMN edge_version;
ALTER TABLE tasks DROP COLUMN edge_node;
