-- +goose Up
-- Watchlists (issue #29): people with reference faces, grouped in lists
-- with a similarity threshold each, that match nodes compare every face
-- against. A person belongs to a project and to any of its lists.
CREATE TABLE watchlists (
    id          VARCHAR(64)   NOT NULL PRIMARY KEY,
    project_id  VARCHAR(64)   NOT NULL,
    name        VARCHAR(128)  NOT NULL,
    description VARCHAR(1024) NOT NULL,
    threshold   DOUBLE PRECISION NOT NULL,
    enabled     INTEGER       NOT NULL,
    created_at  BIGINT        NOT NULL,
    updated_at  BIGINT        NOT NULL
){{.TableOptions}};
CREATE UNIQUE INDEX watchlists_project_name ON watchlists (project_id, name);

CREATE TABLE watchlist_people (
    id          VARCHAR(64)   NOT NULL PRIMARY KEY,
    project_id  VARCHAR(64)   NOT NULL,
    name        VARCHAR(128)  NOT NULL,
    external_id VARCHAR(128)  NOT NULL,
    notes       VARCHAR(2048) NOT NULL,
    created_at  BIGINT        NOT NULL,
    updated_at  BIGINT        NOT NULL
){{.TableOptions}};
CREATE INDEX watchlist_people_project ON watchlist_people (project_id, created_at);

CREATE TABLE watchlist_members (
    list_id     VARCHAR(64) NOT NULL,
    person_id   VARCHAR(64) NOT NULL,
    project_id  VARCHAR(64) NOT NULL,
    PRIMARY KEY (list_id, person_id)
){{.TableOptions}};
CREATE INDEX watchlist_members_person ON watchlist_members (person_id);

-- Reference faces: the embedding (little-endian float32 values, base64,
-- as record_embeddings), the box of the face in its photo, and the
-- algorithm that described it ('' when the embedding was given).
CREATE TABLE watchlist_faces (
    id           VARCHAR(64)  NOT NULL PRIMARY KEY,
    person_id    VARCHAR(64)  NOT NULL,
    project_id   VARCHAR(64)  NOT NULL,
    algorithm_id VARCHAR(64)  NOT NULL,
    box          VARCHAR(64)  NOT NULL,
    dim          INTEGER      NOT NULL,
    vector       {{.LargeText}} NOT NULL,
    created_at   BIGINT       NOT NULL
){{.TableOptions}};
CREATE INDEX watchlist_faces_person ON watchlist_faces (person_id);
CREATE INDEX watchlist_faces_project ON watchlist_faces (project_id);

-- A project's watchlists change: every change writes a new version, so
-- matchers in any process reload the project's lists when it differs.
CREATE TABLE watchlist_versions (
    project_id  VARCHAR(64) NOT NULL PRIMARY KEY,
    version     VARCHAR(64) NOT NULL
){{.TableOptions}};

-- +goose Down
DROP TABLE watchlist_versions;
DROP TABLE watchlist_faces;
DROP TABLE watchlist_members;
DROP TABLE watchlist_people;
DROP TABLE watchlists;
