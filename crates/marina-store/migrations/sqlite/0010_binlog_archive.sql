-- Binlog files archived from a cluster's primaries (point-in-time recovery).
CREATE TABLE archived_binlogs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    file TEXT NOT NULL,
    gtid_start TEXT NOT NULL,
    gtid_end TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    rotated_at TEXT NOT NULL,
    UNIQUE (cluster_id, node_id, file)
);
CREATE INDEX archived_binlogs_cluster ON archived_binlogs(cluster_id, seq);
ALTER TABLE clusters ADD COLUMN binlog_archive_since TEXT;
