-- OVH API applications (the OVH adapter's application key and secret). The
-- secret is needed in clear to check request signatures, so it is kept sealed
-- with the control plane's secret box, like cluster secrets.
CREATE TABLE ovh_applications (
    app_key TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    secret_sealed TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX ovh_applications_tenant ON ovh_applications (tenant_id, created_at);
