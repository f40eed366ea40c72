-- The gateway's durable state on PostgreSQL: the same tables, columns and meaning as
-- migrations/sqlite/0001_init.sql, so that both backends run the same SQL text. Times are
-- unix milliseconds (BIGINT); ids of carts and payments are UUIDs as lower-case hyphenated
-- TEXT. Every integer is BIGINT, because the store binds and reads Rust i64 and sqlx does
-- not silently widen INTEGER to i64 on PostgreSQL.

-- Every verified webhook, kept as received. The unique (provider, event_id) pair is what
-- turns a PSP's resend into a quiet duplicate instead of a second effect.
CREATE TABLE webhook_inbox (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider    TEXT   NOT NULL,
    event_id    TEXT   NOT NULL,
    event_type  TEXT   NOT NULL,
    psp_ref     TEXT,
    body        BYTEA  NOT NULL,
    received_at BIGINT NOT NULL,
    UNIQUE (provider, event_id)
);

-- One checkout session per (cart, provider). The idempotency key is stored before the PSP
-- is called, so that a retried checkout reuses it instead of opening a second PSP session.
CREATE TABLE sessions (
    cart_id         TEXT   NOT NULL,
    provider        TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL,
    psp_ref         TEXT,
    amount_minor    BIGINT,
    currency        TEXT,
    client_json     TEXT,
    status          TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (cart_id, provider)
);

-- A PSP payment belongs to at most one session; NULLs are distinct.
CREATE UNIQUE INDEX sessions_psp_ref ON sessions (provider, psp_ref);

-- The reconciliation sweep looks only at sessions that have not ended.
CREATE INDEX sessions_quiet ON sessions (updated_at)
    WHERE status IN ('creating', 'open', 'authorized');

-- The completion record of one PSP payment. Its state only moves forward.
CREATE TABLE completions (
    provider   TEXT   NOT NULL,
    psp_ref    TEXT   NOT NULL,
    cart_id    TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    payment_id TEXT,
    reason     TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (provider, psp_ref)
);

CREATE INDEX completions_state ON completions (state, updated_at);

-- Every state change of a completion record, for the admin API.
CREATE TABLE completion_history (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider TEXT   NOT NULL,
    psp_ref  TEXT   NOT NULL,
    state    TEXT   NOT NULL,
    reason   TEXT,
    at       BIGINT NOT NULL,
    FOREIGN KEY (provider, psp_ref) REFERENCES completions (provider, psp_ref)
);

CREATE INDEX completion_history_ref ON completion_history (provider, psp_ref, id);

-- The right to complete a cart: the first PSP payment to insert the row holds it, forever.
CREATE TABLE cart_claims (
    cart_id    TEXT   PRIMARY KEY,
    provider   TEXT   NOT NULL,
    psp_ref    TEXT   NOT NULL,
    claimed_at BIGINT NOT NULL
);

-- Durable work. Jobs of one cart run one at a time in id order; a lease marks the worker
-- that runs an attempt and expires if that worker dies.
CREATE TABLE jobs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         TEXT   NOT NULL,
    dedupe_key   TEXT   NOT NULL UNIQUE,
    cart_id      TEXT,
    payload      TEXT   NOT NULL,
    state        TEXT   NOT NULL,
    attempts     BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    next_run_at  BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_cart ON jobs (cart_id, id) WHERE state = 'pending';
