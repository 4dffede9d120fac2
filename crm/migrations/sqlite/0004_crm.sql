-- CRM (SPEC §2): rights, groups with field access, the card form, partners and their history.
ALTER TABLE users ADD COLUMN contacts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN tasks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN reports INTEGER NOT NULL DEFAULT 0;
CREATE TABLE groups (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE TABLE lists (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE list_items (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    list_id           INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    position          INTEGER NOT NULL DEFAULT 0,
    hidden_by_default INTEGER NOT NULL DEFAULT 0,
    UNIQUE (list_id, name)
);
-- Card fields; each is column f_<id> of partners.
CREATE TABLE fields (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    latin       TEXT NOT NULL UNIQUE,
    section     TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL,
    list_id     INTEGER REFERENCES lists(id),
    position    INTEGER NOT NULL DEFAULT 0,
    shown       INTEGER NOT NULL DEFAULT 1,
    placeholder TEXT NOT NULL DEFAULT '',
    side        TEXT NOT NULL DEFAULT 'left',
    in_table    INTEGER NOT NULL DEFAULT 0,
    required    INTEGER NOT NULL DEFAULT 0
);
-- No row: hidden.
CREATE TABLE field_access (
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    field_id INTEGER NOT NULL REFERENCES fields(id) ON DELETE CASCADE,
    access   TEXT NOT NULL,            -- 'view' or 'edit'
    PRIMARY KEY (group_id, field_id)
);
CREATE TABLE partners (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE partner_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    partner_id INTEGER NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    at         TEXT NOT NULL,
    user_id    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    user_name  TEXT NOT NULL,
    field_id   INTEGER REFERENCES fields(id) ON DELETE CASCADE, -- NULL: the card itself (created, e-mail, merge)
    action     TEXT NOT NULL,          -- 'created', 'changed', 'file', 'email', ...
    old_value  TEXT,
    new_value  TEXT
);
CREATE INDEX partner_history_partner ON partner_history (partner_id, id);
