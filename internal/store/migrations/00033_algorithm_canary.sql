-- +goose Up
-- An algorithm's canary: a share of the cameras (of some device groups) whose
-- messages call another version than the current one, as JSON
-- ({"version", "percent", "deviceGroups"}); empty when there is none.
ALTER TABLE algorithms ADD COLUMN canary VARCHAR(8192) NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE algorithms DROP COLUMN canary;
