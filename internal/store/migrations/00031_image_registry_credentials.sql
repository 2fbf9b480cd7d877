-- +goose Up
-- The credentials the image builder logs in to a registry with
-- (SetImageRegistryCredential): the password (or token) sealed with the
-- master key, never returned. host is the registry's host[:port], the key
-- `tianshu secrets rotate` re-encrypts by. Which registries may be reached
-- at all is the operator's configuration (images.registries).
CREATE TABLE image_registry_credentials (
    host         VARCHAR(255)   NOT NULL PRIMARY KEY,
    username     VARCHAR(255)   NOT NULL,
    password_enc {{.LargeText}} NOT NULL,
    updated_at   BIGINT         NOT NULL
){{.TableOptions}};

-- +goose Down
DROP TABLE image_registry_credentials;
