-- +goose Up
-- A key pair whose signatures must cover X-TC-Action (1), so that a
-- captured request cannot be re-aimed at another action; 0 accepts the
-- official SDKs' default, which signs only content-type and host.
ALTER TABLE app_keys ADD COLUMN require_signed_action INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE app_keys DROP COLUMN require_signed_action;
