-- +goose Up
-- Watchlist changes, so that matchers apply only what changed instead of
-- reloading a project's lists (10,000 people of 1024 values: seconds).
-- watchlist_versions.seq counts a project's changes: every transaction
-- that changes its watchlists increments it (which locks the row until
-- commit, so a project's seqs commit in order) and writes one row here per
-- list or person it touched. A matcher at seq N reads the rows above N and
-- reloads those lists and people; rows far behind the newest are pruned,
-- and a matcher that finds a gap reloads the whole project.
ALTER TABLE watchlist_versions ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;

CREATE TABLE watchlist_changes (
    project_id  VARCHAR(64) NOT NULL,
    seq         BIGINT      NOT NULL,
    kind        VARCHAR(16) NOT NULL,
    ref_id      VARCHAR(64) NOT NULL,
    PRIMARY KEY (project_id, seq, kind, ref_id)
){{.TableOptions}};

-- +goose Down
DROP TABLE watchlist_changes;
ALTER TABLE watchlist_versions DROP COLUMN seq;
