-- +goose Up
-- With several events in flight a subscription's events are acknowledged
-- out of order: acked_seq is the floor below which every event is done, and
-- acked_above lists the events above it that are done too (comma-separated
-- offsets from acked_seq), so that the next deliverer, which restarts just
-- above the floor, skips them instead of sending them again. NULL is empty.
ALTER TABLE subscriptions ADD COLUMN acked_above {{.LargeText}};

-- +goose Down
ALTER TABLE subscriptions DROP COLUMN acked_above;
