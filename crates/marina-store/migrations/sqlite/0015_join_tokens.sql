-- One-time tokens a host agent joins with (issue 23): only their SHA-256 is
-- kept; a token is used once, before it expires.
CREATE TABLE join_tokens (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    zone TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    host_id TEXT REFERENCES hosts(id)
);
