-- Hosts nodes run on (issue 23). `marina serve` alone registers its own
-- machine as the one `local` host; nodes name their host.
CREATE TABLE hosts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    zone TEXT NOT NULL,
    address TEXT NOT NULL,
    status TEXT NOT NULL,
    local INTEGER NOT NULL DEFAULT 0,
    memory_bytes INTEGER NOT NULL,
    disk_bytes INTEGER NOT NULL,
    cpus INTEGER NOT NULL,
    version TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX hosts_one_local ON hosts (local) WHERE local = 1;
ALTER TABLE nodes ADD COLUMN host_id TEXT REFERENCES hosts(id);
CREATE INDEX nodes_host ON nodes (host_id);
-- A node's zone is its host's when it was placed (a host keeps its zone).
ALTER TABLE nodes ADD COLUMN zone TEXT;
