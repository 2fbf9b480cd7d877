-- +goose Up
-- Where a task's resumable source (a replay device read without drops) got
-- to: the worker that runs the task saves it about once a second and when
-- the task stops, and the next worker to run the task starts from it. One
-- row per task and source (its index in the task's Sources); position is
-- the source's own string (a frame number). epoch is the task's placement
-- that wrote it, so a worker that lost the task can tell it may not write.
CREATE TABLE task_checkpoints (
    task_id      VARCHAR(64)  NOT NULL,
    source_index INTEGER      NOT NULL,
    position     VARCHAR(256) NOT NULL,
    epoch        BIGINT       NOT NULL,
    updated_at   BIGINT       NOT NULL,
    PRIMARY KEY (task_id, source_index)
){{.TableOptions}};

-- +goose Down
DROP TABLE task_checkpoints;
