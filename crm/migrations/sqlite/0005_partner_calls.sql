-- Which partner each call (inbound or outbound) belongs to; one row per call, written once
-- by the call-event consumer (its primary key is what makes replays harmless).
CREATE TABLE partner_calls (
    call_id    TEXT PRIMARY KEY,
    partner_id INTEGER REFERENCES partners(id) ON DELETE SET NULL,
    number     TEXT,                   -- the outside party, E.164 (NULL: not a phone number)
    created    INTEGER NOT NULL DEFAULT 0 -- the call created the card
);
CREATE INDEX partner_calls_partner ON partner_calls (partner_id);
