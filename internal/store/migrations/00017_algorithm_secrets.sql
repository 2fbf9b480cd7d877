-- +goose Up
-- The secrets of algorithm versions (CreateAlgorithmVersion Secrets):
-- their values, sealed with the master key as one JSON object {name:
-- value} per version. id is "<algorithm_id>@<version>", the one key
-- `tianshu secrets rotate` re-encrypts by. The names are in the version's
-- definition (secretNames); the values never are.
CREATE TABLE algorithm_secrets (
    id           VARCHAR(130)   NOT NULL PRIMARY KEY,
    algorithm_id VARCHAR(64)    NOT NULL,
    version      VARCHAR(64)    NOT NULL,
    secrets_enc  {{.LargeText}} NOT NULL
){{.TableOptions}};
CREATE INDEX algorithm_secrets_algorithm ON algorithm_secrets (algorithm_id);

-- +goose Down
DROP TABLE algorithm_secrets;
