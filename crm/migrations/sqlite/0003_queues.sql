-- ACD queues: the whole configuration (strategy, members with penalties, timings) as the
-- engine's QueueConfig in JSON, edited through the API.
CREATE TABLE IF NOT EXISTS queues (
    name       TEXT PRIMARY KEY,
    config     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
-- Pause reasons operators choose from (editable; these are the defaults).
CREATE TABLE IF NOT EXISTS pause_reasons (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    name     TEXT NOT NULL UNIQUE,
    position INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO pause_reasons (name, position) VALUES
    ('Перерыв', 1), ('Технический сбой', 2), ('Пауза', 3);
-- Queue and operator events, append-only like call_events: what the KPI and Call-Center
-- reports count, and where operator states are restored from after a restart.
CREATE TABLE IF NOT EXISTS queue_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms    INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    queue    TEXT,
    call_id  TEXT,
    operator TEXT,
    data     TEXT NOT NULL                 -- the whole event as JSON
);
CREATE INDEX IF NOT EXISTS queue_events_operator ON queue_events (operator, id);
CREATE INDEX IF NOT EXISTS queue_events_call ON queue_events (call_id);
CREATE INDEX IF NOT EXISTS queue_events_at ON queue_events (at_ms);
