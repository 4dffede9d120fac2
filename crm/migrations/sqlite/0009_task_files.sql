-- Files attached to tasks, kept like card files under <data_dir>/files.
CREATE TABLE task_files (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id      INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    stored       TEXT NOT NULL UNIQUE,
    uploaded_at  TEXT NOT NULL,
    user_name    TEXT NOT NULL
);
CREATE INDEX task_files_task ON task_files (task_id);
-- The card dynamics report reads changes by period.
CREATE INDEX partner_history_at ON partner_history (at);
