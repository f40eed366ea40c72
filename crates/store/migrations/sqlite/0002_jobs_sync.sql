-- Cart sync, job history and the admin's view of work that needs a person.

-- What each session's PSP holds of the cart, and what waits to be sent. A cart mutation
-- writes the pending columns; a sync job reads them when it runs, so rapid mutations
-- coalesce into the latest payload. `sync_job_id` is the session's newest sync job and
-- `sync_seq` numbers the session's sync jobs (their dedupe keys end in it).
ALTER TABLE sessions ADD COLUMN synced_hash TEXT;
ALTER TABLE sessions ADD COLUMN pending_hash TEXT;
ALTER TABLE sessions ADD COLUMN pending_payload TEXT;
ALTER TABLE sessions ADD COLUMN pending_cart TEXT;
ALTER TABLE sessions ADD COLUMN sync_job_id BIGINT;
ALTER TABLE sessions ADD COLUMN sync_seq BIGINT NOT NULL DEFAULT 0;

-- Why a session needs a person (the cart changed after the payment was authorized), and
-- since when. The admin API lists flagged sessions through the partial index.
ALTER TABLE sessions ADD COLUMN attention TEXT;
ALTER TABLE sessions ADD COLUMN attention_at BIGINT;
CREATE INDEX sessions_attention ON sessions (attention_at) WHERE attention IS NOT NULL;

-- Every lease, retry, failure, success and replay of a job, for the admin API.
CREATE TABLE job_history (
    id      INTEGER PRIMARY KEY,
    job_id  BIGINT  NOT NULL,
    event   TEXT    NOT NULL,
    attempt INTEGER NOT NULL,
    error   TEXT,
    at      BIGINT  NOT NULL,
    FOREIGN KEY (job_id) REFERENCES jobs (id)
);

CREATE INDEX job_history_job ON job_history (job_id, id);

-- The gauges count pending jobs per kind and find the oldest of each.
CREATE INDEX jobs_pending_kind ON jobs (kind, created_at) WHERE state = 'pending';
