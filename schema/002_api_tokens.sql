-- 002: bearer tokens for the TCP REST API.  Only a BLAKE2b hash of each
-- token's secret is stored; the secret itself is shown once, at creation.

CREATE TABLE api_tokens (
	id            TEXT PRIMARY KEY,             -- public part, 16 hex digits
	secret_hash   BLOB NOT NULL CHECK (length(secret_hash) = 32),
	role          TEXT NOT NULL CHECK (role IN ('admin', 'read')),
	name          TEXT NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	last_used_at  INTEGER
) WITHOUT ROWID;
