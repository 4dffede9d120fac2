CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    login         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    extension     TEXT UNIQUE,
    -- SIP digest HA1 values for the realm in sip_realm; never the SIP password itself.
    sip_realm     TEXT,
    ha1_md5       TEXT,
    ha1_sha256    TEXT,
    password_hash TEXT NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1,
    admin         INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,          -- 'api' or 'session'
    expires_at TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bindings (
    aor           TEXT NOT NULL,
    contact       TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    binding       TEXT NOT NULL,       -- the engine's Binding as JSON
    PRIMARY KEY (aor, contact)
);
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
