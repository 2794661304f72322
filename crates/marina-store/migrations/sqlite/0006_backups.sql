-- Backups and restored clusters.
ALTER TABLE clusters ADD COLUMN restore_source TEXT;
CREATE TABLE backups (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    cluster_id TEXT NOT NULL,
    method TEXT NOT NULL,
    status TEXT NOT NULL,
    size_bytes INTEGER,
    gtid_position TEXT,
    started_at TEXT,
    finished_at TEXT,
    source_node_id TEXT,
    checksum TEXT,
    mariadb_version TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    error TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX backups_tenant ON backups(tenant_id, seq);
CREATE INDEX backups_cluster ON backups(cluster_id, seq);
CREATE INDEX backups_operation ON backups(operation_id);
