-- +goose Up
-- People's login sessions. The token is never stored: token_hash is its
-- SHA-256, and csrf_hash the SHA-256 of the session's CSRF token. id is the
-- public name a person sees in DescribeMySessions. last_seen_at moves at
-- most once a minute; a session ends at expires_at (absolute) or when
-- unused for the idle timeout, whichever comes first.
CREATE TABLE sessions (
    id           VARCHAR(64)  NOT NULL PRIMARY KEY,
    token_hash   VARCHAR(64)  NOT NULL,
    csrf_hash    VARCHAR(64)  NOT NULL,
    user_id      VARCHAR(64)  NOT NULL,
    source_ip    VARCHAR(64)  NOT NULL,
    created_at   BIGINT       NOT NULL,
    last_seen_at BIGINT       NOT NULL,
    expires_at   BIGINT       NOT NULL
){{.TableOptions}};
CREATE UNIQUE INDEX sessions_token ON sessions (token_hash);
CREATE INDEX sessions_user ON sessions (user_id, created_at);

ALTER TABLE users ADD COLUMN display_name VARCHAR(128) NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN password_changed_at BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE users DROP COLUMN password_changed_at;
ALTER TABLE users DROP COLUMN display_name;
DROP TABLE sessions;
