-- +goose Up
-- Per-app rate limits per action class; 0 means the gateway's default.
ALTER TABLE apps ADD COLUMN read_rps DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN write_rps DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN burst INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE apps DROP COLUMN burst;
ALTER TABLE apps DROP COLUMN write_rps;
ALTER TABLE apps DROP COLUMN read_rps;
