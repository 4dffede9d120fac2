-- Trigram indexes (one per text-like field column, made with the field) let ILIKE '%term%'
-- find a rare term without a scan.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
