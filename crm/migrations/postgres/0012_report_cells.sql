-- The contact-center reports' aggregates (crm/src/reports/README.md, "Aggregates"),
-- written by the journal in the transaction that stores the events they come from.
-- grain: 'slot' (15 minutes, start in ms since the epoch) or 'day' (local midnight in
-- crm.time_zone). Queue '' and operator '' are everyone, on slots (the hourly charts).
CREATE TABLE IF NOT EXISTS report_queue_cells (
    grain       TEXT NOT NULL,
    start_ms    BIGINT NOT NULL,
    queue       TEXT NOT NULL,
    offered     BIGINT NOT NULL DEFAULT 0,
    answered    BIGINT NOT NULL DEFAULT 0,
    abandoned   BIGINT NOT NULL DEFAULT 0,
    short_abandoned BIGINT NOT NULL DEFAULT 0,
    overflowed  BIGINT NOT NULL DEFAULT 0,
    timed_out   BIGINT NOT NULL DEFAULT 0,
    interrupted BIGINT NOT NULL DEFAULT 0,
    answered_within_service_level BIGINT NOT NULL DEFAULT 0,
    answered_wait_ms BIGINT NOT NULL DEFAULT 0,
    wait_ms     BIGINT NOT NULL DEFAULT 0,
    waits       BIGINT NOT NULL DEFAULT 0,
    longest_wait_ms BIGINT NOT NULL DEFAULT 0,
    talk_ms     BIGINT NOT NULL DEFAULT 0,
    completed   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (grain, start_ms, queue)
);
CREATE TABLE IF NOT EXISTS report_operator_cells (
    grain       TEXT NOT NULL,
    start_ms    BIGINT NOT NULL,
    operator    TEXT NOT NULL,
    in_system_ms BIGINT NOT NULL DEFAULT 0,
    ready_ms    BIGINT NOT NULL DEFAULT 0,
    ringing_ms  BIGINT NOT NULL DEFAULT 0,
    talk_ms     BIGINT NOT NULL DEFAULT 0,
    outbound_talk_ms BIGINT NOT NULL DEFAULT 0,
    wrap_up_ms  BIGINT NOT NULL DEFAULT 0,
    pause_ms    BIGINT NOT NULL DEFAULT 0,
    made        BIGINT NOT NULL DEFAULT 0,
    answered    BIGINT NOT NULL DEFAULT 0,   -- of every queue (days only)
    missed      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (grain, start_ms, operator)
);
-- Per day: pause time by reason, and each operator's calls per queue (queue '': calls
-- served of every queue, for the operators answering).
CREATE TABLE IF NOT EXISTS report_pause_cells (
    start_ms    BIGINT NOT NULL,
    operator    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    pause_ms    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (start_ms, operator, reason)
);
CREATE TABLE IF NOT EXISTS report_operator_queue_cells (
    start_ms    BIGINT NOT NULL,
    operator    TEXT NOT NULL,
    queue       TEXT NOT NULL,
    answered    BIGINT NOT NULL DEFAULT 0,
    missed      BIGINT NOT NULL DEFAULT 0,
    served      BIGINT NOT NULL DEFAULT 0,   -- answered calls, by the day they entered
    PRIMARY KEY (queue, start_ms, operator)      -- reports read one queue (or '') by days
);
-- What is going on as of the last stored event: operators' states (JSON, since when)
-- and the calls in queues. The journal resumes from here; reports add the open part.
CREATE TABLE IF NOT EXISTS report_tracks (
    operator    TEXT PRIMARY KEY,
    track       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS report_calls (
    queue       TEXT NOT NULL,
    call_id     TEXT NOT NULL,
    state       TEXT NOT NULL,
    PRIMARY KEY (queue, call_id)
);
-- A queue event delivered twice is stored once: its instant and a digest of its JSON
-- are unique (the index also serves the reports' reads by time).
ALTER TABLE queue_events ADD COLUMN digest BIGINT;
CREATE UNIQUE INDEX IF NOT EXISTS queue_events_at_digest ON queue_events (at_ms, digest);
DROP INDEX IF EXISTS queue_events_at;
-- The events journaled before the aggregates existed: built from the first on.
INSERT INTO settings (key, value) VALUES ('reports.rebuild_from_ms', '0') ON CONFLICT (key) DO NOTHING;
-- The calls report pages newest first by (started_ms, id): walked on an index, not sorted.
CREATE INDEX IF NOT EXISTS calls_started_id ON calls (started_ms, id);
DROP INDEX IF EXISTS calls_started;
