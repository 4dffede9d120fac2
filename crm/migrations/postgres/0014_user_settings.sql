-- A user's own settings: the web app's language ('ru', 'en'; NULL follows the browser).
ALTER TABLE users ADD COLUMN language TEXT;
