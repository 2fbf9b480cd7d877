-- +goose Up
-- The edge hub's certificate, shared by every cloud replica that serves the
-- leaf port, so that the one fingerprint join tokens pin is every hub's:
-- the PEM certificate, and its private key sealed with the master key
-- (`tianshu secrets rotate` re-encrypts it by name). One row, "default".
CREATE TABLE edge_hub_certificates (
    name       VARCHAR(64)    NOT NULL PRIMARY KEY,
    cert_pem   {{.LargeText}} NOT NULL,
    key_enc    {{.LargeText}} NOT NULL,
    created_at BIGINT         NOT NULL
){{.TableOptions}};

-- +goose Down
DROP TABLE edge_hub_certificates;
