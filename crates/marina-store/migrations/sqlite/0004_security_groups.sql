-- Security groups (HP Cloud RDB model): named sets of CIDR + port-range rules,
-- attached to clusters; the endpoints admit exactly the union of the rules.
CREATE TABLE security_groups (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX security_groups_tenant_name ON security_groups(tenant_id, name);

CREATE TABLE security_group_rules (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    security_group_id TEXT NOT NULL REFERENCES security_groups(id),
    cidr TEXT NOT NULL,
    from_port INTEGER NOT NULL,
    to_port INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX security_group_rules_group ON security_group_rules(security_group_id);

CREATE TABLE cluster_security_groups (
    cluster_id TEXT NOT NULL REFERENCES clusters(id),
    security_group_id TEXT NOT NULL REFERENCES security_groups(id),
    PRIMARY KEY (cluster_id, security_group_id)
);
CREATE INDEX cluster_security_groups_group ON cluster_security_groups(security_group_id);
