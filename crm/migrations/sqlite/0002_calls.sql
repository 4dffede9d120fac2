-- Telephony objects edited through the API.
ALTER TABLE users ADD COLUMN record INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN trunk_id INTEGER;
CREATE TABLE IF NOT EXISTS trunks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    address      TEXT NOT NULL,            -- host:port calls out are sent to
    transport    TEXT NOT NULL DEFAULT 'udp',
    inbound_ip   TEXT,                     -- calls from this address are the trunk's
    inbound_port INTEGER,
    caller_id    TEXT,
    username     TEXT,
    password     TEXT,
    register     INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS numbers (
    number      TEXT PRIMARY KEY,          -- the DID as the trunk sends it
    destination TEXT NOT NULL,             -- 'user:<login>' now; 'queue:<id>' later
    record      INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL
);
-- The event log: append-only, the source of every report.
CREATE TABLE IF NOT EXISTS call_events (
    call_id TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    at_ms   INTEGER NOT NULL,
    leg     TEXT,
    kind    TEXT NOT NULL,
    data    TEXT NOT NULL,                 -- the whole event as JSON
    PRIMARY KEY (call_id, seq)
);
CREATE INDEX IF NOT EXISTS call_events_at ON call_events (at_ms);
-- One summary row per call, kept up to date from its events.
CREATE TABLE IF NOT EXISTS calls (
    id           TEXT PRIMARY KEY,
    direction    TEXT NOT NULL,
    from_number  TEXT NOT NULL,
    to_number    TEXT NOT NULL,
    user_login   TEXT,
    number       TEXT,
    trunk        TEXT,
    started_ms   INTEGER NOT NULL,
    answered_ms  INTEGER,
    answered_by  TEXT,
    ended_ms     INTEGER,
    end_cause    TEXT,
    end_status   INTEGER,
    recording    TEXT
);
CREATE INDEX IF NOT EXISTS calls_started ON calls (started_ms);
CREATE TABLE IF NOT EXISTS recordings (
    call_id     TEXT PRIMARY KEY,
    path        TEXT NOT NULL UNIQUE,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    bytes       INTEGER NOT NULL DEFAULT 0,
    channels    INTEGER NOT NULL DEFAULT 2,
    complete    INTEGER NOT NULL DEFAULT 0 -- 0 while recording, or repaired after a crash
);
