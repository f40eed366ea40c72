-- Cart sync, job history and the admin's view of work that needs a person; the same as
-- migrations/sqlite/0002_jobs_sync.sql.

ALTER TABLE sessions ADD COLUMN synced_hash TEXT;
ALTER TABLE sessions ADD COLUMN pending_hash TEXT;
ALTER TABLE sessions ADD COLUMN pending_payload TEXT;
ALTER TABLE sessions ADD COLUMN pending_cart TEXT;
ALTER TABLE sessions ADD COLUMN sync_job_id BIGINT;
ALTER TABLE sessions ADD COLUMN sync_seq BIGINT NOT NULL DEFAULT 0;

ALTER TABLE sessions ADD COLUMN attention TEXT;
ALTER TABLE sessions ADD COLUMN attention_at BIGINT;
CREATE INDEX sessions_attention ON sessions (attention_at) WHERE attention IS NOT NULL;

CREATE TABLE job_history (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id  BIGINT NOT NULL,
    event   TEXT   NOT NULL,
    attempt BIGINT NOT NULL,
    error   TEXT,
    at      BIGINT NOT NULL,
    FOREIGN KEY (job_id) REFERENCES jobs (id)
);

CREATE INDEX job_history_job ON job_history (job_id, id);

CREATE INDEX jobs_pending_kind ON jobs (kind, created_at) WHERE state = 'pending';
