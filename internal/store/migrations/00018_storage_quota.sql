-- +goose Up
-- A project's storage quota in bytes, set by platform admins
-- (ModifyProjectQuota MaxStorageBytes); 0 takes the platform's default
-- (--api.quotas.storage-bytes). records.bytes is what a record holds: its
-- document and the objects the record sink stored with it; records
-- written before this migration count 0.
ALTER TABLE projects ADD COLUMN max_storage_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE records DROP COLUMN bytes;
ALTER TABLE projects DROP COLUMN max_storage_bytes;
