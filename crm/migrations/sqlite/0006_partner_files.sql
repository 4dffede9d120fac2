-- Files attached to cards, kept under <data_dir>/files/<first two of stored>/<stored>.
CREATE TABLE partner_files (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    partner_id   INTEGER NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,        -- the original file name
    content_type TEXT NOT NULL,        -- sniffed from the content, not taken from the client
    size         INTEGER NOT NULL,
    stored       TEXT NOT NULL UNIQUE, -- file name on disk
    uploaded_at  TEXT NOT NULL,
    user_name    TEXT NOT NULL
);
CREATE INDEX partner_files_partner ON partner_files (partner_id);
