-- Marina state, SQLite flavour. Every table has an integer `seq` used for stable
-- ordering and opaque list cursors; ids are the contract's prefixed strings.

CREATE TABLE tenants (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE tokens (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);

CREATE TABLE clusters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    size_id TEXT NOT NULL,
    version TEXT NOT NULL,
    replication TEXT NOT NULL,
    node_count INTEGER NOT NULL,
    writer_host TEXT NOT NULL,
    reader_host TEXT NOT NULL,
    endpoint_port INTEGER NOT NULL,
    endpoints_ready INTEGER NOT NULL DEFAULT 0,
    secrets_enc TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- Names are unique per tenant among clusters that are not deleted; endpoint
-- addresses are unique among live clusters.
CREATE UNIQUE INDEX clusters_tenant_name ON clusters(tenant_id, name) WHERE status <> 'deleted';
CREATE UNIQUE INDEX clusters_writer_host ON clusters(writer_host) WHERE status <> 'deleted';
CREATE UNIQUE INDEX clusters_reader_host ON clusters(reader_host) WHERE status <> 'deleted';

CREATE TABLE nodes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    cluster_id TEXT NOT NULL REFERENCES clusters(id),
    ordinal INTEGER NOT NULL,
    role TEXT NOT NULL,
    status TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL UNIQUE,
    size_id TEXT NOT NULL,
    server_id INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX nodes_cluster ON nodes(cluster_id);

CREATE TABLE operations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    cluster_id TEXT,
    node_id TEXT,
    op_type TEXT NOT NULL,
    status TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX operations_cluster ON operations(cluster_id);
CREATE INDEX operations_status ON operations(status);

CREATE TABLE operation_steps (
    operation_id TEXT NOT NULL REFERENCES operations(id),
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    PRIMARY KEY (operation_id, idx)
);

CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    cluster_id TEXT NOT NULL,
    node_id TEXT,
    event_type TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX events_cluster ON events(cluster_id);
