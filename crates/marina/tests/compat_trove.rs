//! HP Cloud RDB / OpenStack Trove (seed `001_…`) against Marina: the seed's
//! curl examples (host, tenant id and token replaced) on real clusters —
//! versions, flavors 100–105, an instance created with the seed's body,
//! polled to `running` and logged in to with its one-time credential,
//! security groups and rules, `reset-password` and `restart`, delete — then
//! the newer Trove create body (databases, users, `access.allowed_cidrs`).
//! Both ways: instances are clusters and clusters are instances. Errors use
//! OpenStack's `{"itemNotFound": {…}}` form.

mod common;

use std::time::Duration;

use common::*;
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

struct Trove {
    token: String,
    base: String,
}

impl Trove {
    async fn curl(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let auth = format!("X-Auth-Token: {}", self.token);
        let mut args = vec!["-X", method, "-H", "Content-Type: application/json", "-H", &auth, &url];
        let text = body.map(|b| b.to_string());
        if let Some(t) = &text {
            args.extend(["-d", t.as_str()]);
        }
        curl(&args).await
    }

    async fn until_running(&self, id: &str) -> Value {
        eventually(Duration::from_secs(120), "instance running", || async {
            let (s, v) = self.curl("GET", &format!("/instances/{id}"), None).await;
            assert_eq!(s, 200, "{v}");
            let i = &v["instance"];
            (i["status"] == "running" && i["hostname"] != "").then(|| i.clone())
        })
        .await
    }
}

async fn login(host: &str, port: u16, user: &str, password: &str) -> Result<mysql_async::Conn, mysql_async::Error> {
    mysql(host, port, user, password).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trove_instance_workflow_runs_against_marina() {
    let app = TestApp::start().await;
    let (_, tenant) = app.get("/v1/tenants/current").await;
    let tenant_id = tenant["id"].as_str().unwrap().to_string();
    let (_, tok) = app
        .post("/v1/tokens", json!({"name": "trove", "scopes": ["admin"]}))
        .await;
    let t = Trove {
        token: tok["secret"].as_str().unwrap().to_string(),
        base: format!("{}/v1.0/{tenant_id}", app.url),
    };

    // Versions, Marina's and the seed's.
    let (s, v) = curl(&["-X", "GET", &format!("{}/", app.url)]).await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["v1", "v1.0"]);
    let (s, v) = curl(&["-X", "GET", &format!("{}/v1.0", app.url)]).await;
    assert_eq!((s, &v["version"]["id"]), (200, &json!("v1.0")), "{v}");
    assert_eq!(v["version"]["links"][0]["rel"], "self");

    // Flavors: the seed's ids, names and sizes.
    let (s, f) = t.curl("GET", "/flavors", None).await;
    assert_eq!(s, 200, "{f}");
    let seen: Vec<(u64, &str, u64, u64)> = f["flavors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["id"].as_u64().unwrap(),
                x["name"].as_str().unwrap(),
                x["ram"].as_u64().unwrap(),
                x["vcpu"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (100, "xsmall", 1, 1),
            (101, "small", 2, 2),
            (102, "medium", 4, 2),
            (103, "large", 8, 4),
            (104, "xlarge", 16, 4),
            (105, "2xlarge", 32, 8)
        ]
    );
    assert!(
        f["flavors"][3]["links"][0]["href"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v1.0/{tenant_id}/flavors/103"))
    );
    let (s, d) = t.curl("GET", "/flavors/detail", None).await;
    assert_eq!((s, &d["flavors"]), (200, &f["flavors"]));
    let (s, one) = t.curl("GET", "/flavors/104", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        (one["flavor"]["name"].as_str(), one["flavor"]["ram"].as_u64()),
        (Some("xlarge"), Some(16))
    );
    let (s, e) = t.curl("GET", "/flavors/999", None).await;
    assert_eq!((s, e["itemNotFound"]["code"].as_u64()), (404, Some(404)), "{e}");

    // Create a new database instance: the seed's body, as sent.
    let flavor_url = format!("{}/flavors/100", t.base);
    let (s, made) = t
        .curl(
            "POST",
            "/instances",
            Some(json!({"instance":{"name": "My_2nd_Instance","flavorRef": flavor_url,"port": "3306","dbtype":{"name": "mysql","version": "5.5"}}})),
        )
        .await;
    assert_eq!(s, 201, "{made}");
    let inst = &made["instance"];
    assert_eq!(inst["status"], "building");
    assert_eq!(inst["hostname"], "");
    assert_eq!(inst["flavor"]["id"], "100");
    assert_eq!(inst["links"][0]["rel"], "self");
    let id = inst["id"].as_str().unwrap().to_string();
    assert!(
        inst["links"][0]["href"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/instances/{id}"))
    );
    let user = inst["credential"]["username"].as_str().unwrap().to_string();
    let password = inst["credential"]["password"].as_str().unwrap().to_string();

    // Poll until running with a hostname, then log in with the credential.
    let running = t.until_running(&id).await;
    assert!(running.get("credential").is_none(), "the credential is shown once");
    let host = running["hostname"].as_str().unwrap().to_string();
    let port = running["port"].as_u64().unwrap() as u16;
    let mut conn = login(&host, port, &user, &password).await.unwrap();
    let one: Option<u8> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    drop(conn);
    // The instance is a native cluster.
    let (s, native) = app.get(&format!("/v1/clusters/{id}")).await;
    assert_eq!((s, native["name"].as_str()), (200, Some("my-2nd-instance")), "{native}");
    let (_, list) = t.curl("GET", "/instances", None).await;
    assert!(
        list["instances"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == id.as_str()),
        "{list}"
    );

    // Security groups (made natively, served here) and rules.
    let (_, sg) = app
        .post(
            "/v1/security-groups",
            json!({"name": "default", "description": "Default Security Group"}),
        )
        .await;
    let sg_id = sg["id"].as_str().unwrap().to_string();
    let (s, groups) = t.curl("GET", "/security-groups", None).await;
    assert_eq!(s, 200);
    assert_eq!(groups["security-groups"][0]["id"], sg_id.as_str());
    assert_eq!(groups["security-groups"][0]["name"], "default");
    let (s, rule) = t
        .curl(
            "POST",
            "/security-group-rules",
            Some(json!({"security_group_rule": {"security_group_id": sg_id, "cidr": "0.0.0.0/0", "from_port": 3306, "to_port": 3306 } })),
        )
        .await;
    assert_eq!(s, 201, "{rule}");
    let rule_id = rule["security_group_rule"]["id"].as_str().unwrap().to_string();
    assert_eq!(rule["security_group_rule"]["security_group_id"], sg_id.as_str());
    let (s, g) = t.curl("GET", &format!("/security-groups/{sg_id}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(g["security-group"]["rules"][0]["ip_range"]["cidr"], "0.0.0.0/0");
    let (_, native_sg) = app.get(&format!("/v1/security-groups/{sg_id}")).await;
    assert_eq!(native_sg["rules"][0]["id"], rule_id.as_str());
    let (s, r) = t.curl("GET", &format!("/security-group-rules/{rule_id}"), None).await;
    assert_eq!((s, &r["security_group_rule"]["cidr"]), (200, &json!("0.0.0.0/0")));
    let (s, _) = t
        .curl("DELETE", &format!("/security-group-rules/{rule_id}"), None)
        .await;
    assert_eq!(s, 204);
    let (s, e) = t.curl("GET", &format!("/security-group-rules/{rule_id}"), None).await;
    assert_eq!((s, e["itemNotFound"]["code"].as_u64()), (404, Some(404)), "{e}");

    // Reset the password: the new one works, the old one no longer.
    let (s, reset) = t
        .curl(
            "POST",
            &format!("/instances/{id}/action"),
            Some(json!({"reset-password":{}})),
        )
        .await;
    assert_eq!(s, 200, "{reset}");
    let new_password = reset["password"].as_str().unwrap();
    assert_ne!(new_password, password);
    assert!(login(&host, port, &user, new_password).await.is_ok());
    assert!(login(&host, port, &user, &password).await.is_err());

    // Restart: Marina's rolling reboot.
    let (s, _) = t
        .curl("POST", &format!("/instances/{id}/action"), Some(json!({"restart":{}})))
        .await;
    assert_eq!(s, 204);
    let reboot = wait_op_count(&app, &id, "reboot_cluster", 1, Duration::from_secs(60)).await;
    assert_eq!(reboot["status"], "succeeded", "{reboot}");
    let (s, e) = t
        .curl("POST", &format!("/instances/{id}/action"), Some(json!({"rebuild":{}})))
        .await;
    assert_eq!((s, e["badRequest"]["code"].as_u64()), (400, Some(400)), "{e}");

    // The newer Trove body: datastore, volume, databases, users, access.
    let (s, made) = t
        .curl(
            "POST",
            "/instances",
            Some(json!({"instance": {
                "name": "orders", "flavorRef": "100", "volume": {"size": 1},
                "datastore": {"type": "mysql", "version": "10.11"},
                "databases": [{"name": "orders"}],
                "users": [{"name": "app", "password": "app-secret-1", "databases": [{"name": "orders"}]}],
                "access": {"is_public": false, "allowed_cidrs": ["127.0.0.0/8"]},
                "nics": [], "availability_zone": "nova"
            }})),
        )
        .await;
    assert_eq!(s, 201, "{made}");
    let id2 = made["instance"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        made["instance"]["security_groups"].as_array().unwrap().len(),
        1,
        "{made}"
    );
    let running = t.until_running(&id2).await;
    assert_eq!(running["datastore"]["type"], "mariadb");
    let mut conn = login(running["hostname"].as_str().unwrap(), port, "app", "app-secret-1")
        .await
        .unwrap();
    conn.query_drop("CREATE TABLE orders.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    drop(conn);
    let (_, dbs) = app.get(&format!("/v1/clusters/{id2}/databases")).await;
    assert_eq!(dbs["data"], json!([{"name": "orders", "object": "database"}]));
    // The sealed hash is dropped once the accounts exist: nothing of it in
    // the operation either.
    let (_, ops) = app.get(&format!("/v1/clusters/{id2}/operations")).await;
    assert!(!ops.to_string().contains("app-secret-1"));
    let (_, sgs) = app.get("/v1/security-groups").await;
    assert!(
        sgs["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"].as_str().unwrap().starts_with("trove-orders-") && g["rules"][0]["cidr"] == "127.0.0.0/8"),
        "{sgs}"
    );
    // Bad bodies lose nothing.
    let (s, e) = t
        .curl(
            "POST",
            "/instances",
            Some(json!({"instance": {"name": "pg", "flavorRef": "100", "datastore": {"type": "postgresql"}}})),
        )
        .await;
    assert_eq!((s, e["badRequest"]["code"].as_u64()), (400, Some(400)), "{e}");
    let (s, e) = t
        .curl(
            "POST",
            "/instances",
            Some(json!({"instance": {"name": "x", "flavorRef": "77"}})),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    let (s, e) = t
        .curl(
            "POST",
            "/instances",
            Some(json!({"instance": {"name": "bad", "flavorRef": "100", "databases": [{"name": "no`pe"}]}})),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    let (_, clusters) = app.get("/v1/clusters").await;
    assert_eq!(clusters["data"].as_array().unwrap().len(), 2, "{clusters}");

    // Another tenant's path and no token.
    let (s, e) = curl(&[
        "-X",
        "GET",
        "-H",
        &format!("X-Auth-Token: {}", t.token),
        &format!("{}/v1.0/tn_other/instances", app.url),
    ])
    .await;
    assert_eq!((s, e["itemNotFound"]["code"].as_u64()), (404, Some(404)), "{e}");
    let (s, e) = curl(&["-X", "GET", &format!("{}/instances", t.base)]).await;
    assert_eq!((s, e["unauthorized"]["code"].as_u64()), (401, Some(401)), "{e}");

    // Delete: 204, then gone here and natively.
    let (s, _) = t.curl("DELETE", &format!("/instances/{id}"), None).await;
    assert_eq!(s, 204);
    eventually(Duration::from_secs(60), "instance gone", || async {
        let (s, _) = t.curl("GET", &format!("/instances/{id}"), None).await;
        (s == 404).then_some(())
    })
    .await;
    let (s, _) = app.get(&format!("/v1/clusters/{id}")).await;
    assert_eq!(s, 404);
}

/// The OpenStack command-line client (`python-openstackclient` with
/// `python-troveclient`, from PyPI; `scripts/install-deps.sh --test` puts it
/// in /opt/marina-test/osc; `MARINA_TEST_OPENSTACK` points elsewhere).
fn openstack_cli() -> String {
    std::env::var("MARINA_TEST_OPENSTACK").unwrap_or_else(|_| "/opt/marina-test/osc/bin/openstack".into())
}

async fn openstack(endpoint: &str, token: &str, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(openstack_cli())
        .args([
            "--os-auth-type",
            "admin_token",
            "--os-endpoint",
            endpoint,
            "--os-token",
            token,
        ])
        .args(args)
        .output()
        .await
        .expect("run the openstack client (scripts/install-deps.sh --test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openstack_database_client_lists_creates_shows_and_deletes() {
    let app = TestApp::start().await;
    let (_, tenant) = app.get("/v1/tenants/current").await;
    let endpoint = format!("{}/v1.0/{}", app.url, tenant["id"].as_str().unwrap());
    let token = app.token.clone();

    let (ok, out) = openstack(&endpoint, &token, &["database", "flavor", "list", "-f", "json"]).await;
    assert!(ok, "{out}");
    let flavors: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(flavors.as_array().unwrap().len(), 6, "{out}");
    assert_eq!(flavors[0]["Name"], "xsmall", "{out}");

    let (ok, out) = openstack(
        &endpoint,
        &token,
        &[
            "database", "instance", "create", "from-osc", "--flavor", "xsmall", "--size", "1", "-f", "json",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let made: Value = serde_json::from_str(&out).unwrap();
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(made["name"], "from-osc");

    let shown = eventually(Duration::from_secs(120), "running through osc", || async {
        let (ok, out) = openstack(&endpoint, &token, &["database", "instance", "show", &id, "-f", "json"]).await;
        assert!(ok, "{out}");
        let v: Value = serde_json::from_str(&out).unwrap();
        (v["status"] == "running").then_some(v)
    })
    .await;
    assert_eq!(shown["flavor"], "100", "{shown}");
    assert_eq!(shown["datastore"], "mariadb", "{shown}");

    let (ok, out) = openstack(&endpoint, &token, &["database", "instance", "list", "-f", "json"]).await;
    assert!(ok, "{out}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert!(list.as_array().unwrap().iter().any(|i| i["ID"] == id.as_str()), "{out}");
    let (_, native) = app.get(&format!("/v1/clusters/{id}")).await;
    assert_eq!(native["status"], "active");

    let (ok, out) = openstack(&endpoint, &token, &["database", "instance", "delete", "from-osc"]).await;
    assert!(ok, "{out}");
    eventually(Duration::from_secs(60), "deleted through osc", || async {
        let (s, _) = app.get(&format!("/v1/clusters/{id}")).await;
        (s == 404).then_some(())
    })
    .await;
}
