-- Calendar events (SPEC 2.9) and tasks (SPEC 2.10).
CREATE TABLE events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    description    TEXT NOT NULL,
    kind           TEXT NOT NULL DEFAULT '',
    at_ms          INTEGER NOT NULL,
    remind_min     INTEGER,               -- minutes before at_ms; NULL: no reminder
    remind_at_ms   INTEGER,
    reminded       INTEGER NOT NULL DEFAULT 0,
    partner_id     INTEGER REFERENCES partners(id) ON DELETE SET NULL,
    assignee_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    initiator_id   INTEGER REFERENCES users(id) ON DELETE SET NULL,
    parent_id      INTEGER REFERENCES events(id) ON DELETE SET NULL, -- the event this follows up
    completed_at   TEXT,
    created_at     TEXT NOT NULL
);
CREATE INDEX events_assignee ON events (assignee_id, at_ms);
CREATE INDEX events_due ON events (remind_at_ms) WHERE NOT reminded;
CREATE INDEX events_partner ON events (partner_id);
CREATE TABLE tasks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    title        TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT 'todo',
    priority     TEXT NOT NULL DEFAULT 'normal',
    assignee_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    author_id    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    starts_on    TEXT,
    due_on       TEXT,
    hours_spent  REAL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX tasks_assignee ON tasks (assignee_id, status);
CREATE TABLE task_partners (
    task_id    INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    partner_id INTEGER NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, partner_id)
);
CREATE TABLE task_comments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    user_name  TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE task_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    at         TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    field      TEXT NOT NULL,
    old_value  TEXT,
    new_value  TEXT
);
