-- Who wrote a history line, comment or file, by id: the name stored beside it is only what
-- it was then (and what is shown once the user is deleted); a name anyone may change
-- for themselves never says who did what.
ALTER TABLE task_history ADD COLUMN user_id INTEGER REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE task_comments ADD COLUMN user_id INTEGER REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE partner_files ADD COLUMN user_id INTEGER REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE task_files ADD COLUMN user_id INTEGER REFERENCES users(id) ON DELETE SET NULL;
