-- +goose Up
-- A subscription delivers its app's project's events (topic events.<project>)
-- that pass its filter over one channel: webhook, grpc or sse. Its bus
-- durable consumer is named after its id. generation grows with every change
-- (modify, pause, resume, replay) so that whoever delivers it restarts with
-- the new settings. start_pending asks the next deliverer to re-create the
-- durable at start_seq (or start_time_ms when start_seq is 0). One replica at
-- a time delivers a subscription: the one named in lease_holder, until
-- lease_until_ms. The counters are flushed by the deliverer every second.
CREATE TABLE subscriptions (
    id               VARCHAR(64)   NOT NULL PRIMARY KEY,
    project_id       VARCHAR(64)   NOT NULL,
    app_id           VARCHAR(64)   NOT NULL,
    name             VARCHAR(128)  NOT NULL,
    channel          VARCHAR(16)   NOT NULL,
    url              VARCHAR(2048) NOT NULL,
    secret_enc       VARCHAR(512)  NOT NULL,
    filter           {{.LargeText}} NOT NULL,
    max_attempts     INTEGER       NOT NULL,
    max_age_ms       BIGINT        NOT NULL,
    status           VARCHAR(16)   NOT NULL,
    generation       BIGINT        NOT NULL,
    start_pending    INTEGER       NOT NULL,
    start_seq        BIGINT        NOT NULL,
    start_time_ms    BIGINT        NOT NULL,
    lease_holder     VARCHAR(128)  NOT NULL,
    lease_until_ms   BIGINT        NOT NULL,
    delivered        BIGINT        NOT NULL,
    failed           BIGINT        NOT NULL,
    retried          BIGINT        NOT NULL,
    dead_lettered    BIGINT        NOT NULL,
    acked_seq        BIGINT        NOT NULL,
    last_error       VARCHAR(1024) NOT NULL,
    last_error_ms    BIGINT        NOT NULL,
    created_at       BIGINT        NOT NULL,
    updated_at       BIGINT        NOT NULL
){{.TableOptions}};
CREATE INDEX subscriptions_project ON subscriptions (project_id, created_at);
CREATE INDEX subscriptions_channel ON subscriptions (channel, status);

-- Events a webhook subscription gave up on (MaxAttempts or MaxAge), kept
-- with their JSON so that ReplaySubscription can deliver them again.
CREATE TABLE subscription_dead_letters (
    subscription_id VARCHAR(64)   NOT NULL,
    seq             BIGINT        NOT NULL,
    event_id        VARCHAR(512)  NOT NULL,
    subject         VARCHAR(512)  NOT NULL,
    data            {{.LargeText}} NOT NULL,
    attempts        INTEGER       NOT NULL,
    last_error      VARCHAR(1024) NOT NULL,
    dead_at_ms      BIGINT        NOT NULL,
    replay          INTEGER       NOT NULL,
    PRIMARY KEY (subscription_id, seq)
){{.TableOptions}};

-- +goose Down
DROP TABLE subscription_dead_letters;
DROP TABLE subscriptions;
