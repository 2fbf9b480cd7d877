-- +goose Up
-- The values of device Options entries marked secret ({"name", "value",
-- "secret": true}, such as an adapter's env), sealed with the master key as
-- one JSON object; the options column keeps the entries without their
-- values. Empty: none.
ALTER TABLE devices ADD COLUMN secrets_enc {{.LargeText}};
UPDATE devices SET secrets_enc = '';

-- +goose Down
ALTER TABLE devices DROP COLUMN secrets_enc;
