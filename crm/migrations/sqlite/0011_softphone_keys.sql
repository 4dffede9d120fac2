-- SIP credentials the browser softphone gets, one per web session (or API token): valid
-- over WebSocket only and gone with the session they were issued to, so a web login never
-- yields the account's own SIP password hash.
CREATE TABLE IF NOT EXISTS softphone_keys (
    token_hash TEXT PRIMARY KEY REFERENCES api_tokens(token_hash) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    username   TEXT NOT NULL UNIQUE,   -- '<extension>~<random>', the digest username
    ha1_md5    TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL
);
