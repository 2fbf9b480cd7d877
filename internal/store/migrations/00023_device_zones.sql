-- +goose Up
-- The zones and lines drawn on a device's picture, as JSON:
-- [{"Name", "Kind": "polygon"|"line", "Points": [[x, y], ...]}] in
-- normalized coordinates (0..1 of the frame), so they survive a change of
-- resolution. Empty: none.
ALTER TABLE devices ADD COLUMN zones {{.LargeText}};
UPDATE devices SET zones = '';

-- +goose Down
ALTER TABLE devices DROP COLUMN zones;
