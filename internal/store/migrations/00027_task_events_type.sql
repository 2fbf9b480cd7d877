-- +goose Up
-- DescribeTaskOverview reads a project's latest failure events: this index
-- lets it read them newest first by type instead of every event of every
-- task of the project.
CREATE INDEX task_events_type_time ON task_events (type, time_ms);

-- +goose Down
{{dropIndex "task_events_type_time" "task_events"}};
