-- The table's search index: one row per card and text-like field, rowid = partner * 4096 +
-- field, the value as shown; trigrams find any substring (three characters or more) in
-- any case, so a term matching few cards needs no scan.
CREATE VIRTUAL TABLE partner_search USING fts5(value, tokenize = 'trigram');
