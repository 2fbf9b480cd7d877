-- +goose Up
-- A project's quotas, set by platform admins (ModifyProjectQuota): how
-- many apps, devices and tasks it may hold. 0 takes the platform's
-- default (--api.quota.*).
ALTER TABLE projects ADD COLUMN max_apps INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN max_devices INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN max_tasks INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE projects DROP COLUMN max_tasks;
ALTER TABLE projects DROP COLUMN max_devices;
ALTER TABLE projects DROP COLUMN max_apps;
