//! The CLI covers the native API: every `/v1/...` route of the OpenAPI
//! document has a `marina` command (or a reasoned entry in `NOT_IN_CLI`),
//! and the commands added for that work end to end against a real server
//! with table and JSON output. Also: `--version` names the commit,
//! `completion` prints scripts, and errors say what to do next.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;
use serde_json::Value;

/// Route → the command that calls it.
const COVERAGE: &[(&str, &str, &str)] = &[
    ("GET", "/v1/audit-events", "audit list"),
    ("GET", "/v1/backups/{backup_id}", "backup show"),
    ("DELETE", "/v1/backups/{backup_id}", "backup delete"),
    ("GET", "/v1/clusters", "cluster list"),
    ("POST", "/v1/clusters", "cluster create"),
    ("GET", "/v1/clusters/{cluster_id}", "cluster show"),
    ("PATCH", "/v1/clusters/{cluster_id}", "cluster update"),
    ("DELETE", "/v1/clusters/{cluster_id}", "cluster delete"),
    ("GET", "/v1/clusters/{cluster_id}/backups", "backup list"),
    ("POST", "/v1/clusters/{cluster_id}/backups", "backup create"),
    ("GET", "/v1/clusters/{cluster_id}/databases", "db list"),
    ("POST", "/v1/clusters/{cluster_id}/databases", "db create"),
    ("DELETE", "/v1/clusters/{cluster_id}/databases/{name}", "db delete"),
    ("GET", "/v1/clusters/{cluster_id}/events", "cluster events"),
    ("POST", "/v1/clusters/{cluster_id}/failover", "cluster failover"),
    ("GET", "/v1/clusters/{cluster_id}/nodes", "node list"),
    ("POST", "/v1/clusters/{cluster_id}/nodes", "node add"),
    ("GET", "/v1/clusters/{cluster_id}/nodes/{node_id}", "node show"),
    ("PATCH", "/v1/clusters/{cluster_id}/nodes/{node_id}", "node resize"),
    ("DELETE", "/v1/clusters/{cluster_id}/nodes/{node_id}", "node remove"),
    (
        "GET",
        "/v1/clusters/{cluster_id}/nodes/{node_id}/history",
        "node history",
    ),
    (
        "POST",
        "/v1/clusters/{cluster_id}/nodes/{node_id}/maintenance",
        "node maintenance",
    ),
    (
        "GET",
        "/v1/clusters/{cluster_id}/nodes/{node_id}/processlist",
        "node processlist",
    ),
    (
        "POST",
        "/v1/clusters/{cluster_id}/nodes/{node_id}/read-only",
        "node read-only",
    ),
    (
        "POST",
        "/v1/clusters/{cluster_id}/nodes/{node_id}/reboot",
        "node reboot",
    ),
    (
        "POST",
        "/v1/clusters/{cluster_id}/nodes/{node_id}/reseed",
        "node reseed",
    ),
    ("POST", "/v1/clusters/{cluster_id}/nodes/{node_id}/start", "node start"),
    (
        "GET",
        "/v1/clusters/{cluster_id}/nodes/{node_id}/status-variables",
        "node status-variables",
    ),
    ("POST", "/v1/clusters/{cluster_id}/nodes/{node_id}/stop", "node stop"),
    (
        "GET",
        "/v1/clusters/{cluster_id}/nodes/{node_id}/variables",
        "node variables",
    ),
    ("GET", "/v1/clusters/{cluster_id}/operations", "operation list"),
    ("POST", "/v1/clusters/{cluster_id}/reboot", "cluster reboot"),
    (
        "POST",
        "/v1/clusters/{cluster_id}/reset-password",
        "cluster reset-password",
    ),
    (
        "GET",
        "/v1/clusters/{cluster_id}/restore-window",
        "cluster restore-window",
    ),
    ("GET", "/v1/clusters/{cluster_id}/status", "cluster status"),
    ("POST", "/v1/clusters/{cluster_id}/switchover", "cluster switchover"),
    ("GET", "/v1/clusters/{cluster_id}/users", "user list"),
    ("POST", "/v1/clusters/{cluster_id}/users", "user create"),
    ("DELETE", "/v1/clusters/{cluster_id}/users/{name}", "user delete"),
    ("GET", "/v1/node-sizes", "node-size list"),
    ("GET", "/v1/node-sizes/{size_id}", "node-size show"),
    ("GET", "/v1/operations", "operation list"),
    ("GET", "/v1/operations/{operation_id}", "operation show"),
    ("GET", "/v1/ovh-applications", "ovh-app list"),
    ("POST", "/v1/ovh-applications", "ovh-app create"),
    ("DELETE", "/v1/ovh-applications/{application_key}", "ovh-app delete"),
    ("GET", "/v1/security-groups", "security-group list"),
    ("POST", "/v1/security-groups", "security-group create"),
    ("GET", "/v1/security-groups/{sg_id}", "security-group show"),
    ("DELETE", "/v1/security-groups/{sg_id}", "security-group delete"),
    ("POST", "/v1/security-groups/{sg_id}/rules", "security-group rule add"),
    (
        "DELETE",
        "/v1/security-groups/{sg_id}/rules/{rule_id}",
        "security-group rule delete",
    ),
    ("GET", "/v1/background-tasks", "background-task list"),
    ("GET", "/v1/hosts", "host list"),
    ("GET", "/v1/hosts/{host_id}", "host show"),
    ("POST", "/v1/hosts/{host_id}/cordon", "host cordon"),
    ("POST", "/v1/hosts/{host_id}/uncordon", "host uncordon"),
    ("POST", "/v1/hosts/{host_id}/drain", "host drain"),
    ("POST", "/v1/hosts/join-tokens", "host join-token create"),
    ("GET", "/v1/tenants", "tenant list"),
    ("POST", "/v1/tenants", "tenant create"),
    ("GET", "/v1/tenants/current", "tenant show"),
    ("GET", "/v1/tenants/{tenant_id}", "tenant show"),
    ("GET", "/v1/tokens", "token list"),
    ("POST", "/v1/tokens", "token create"),
    ("DELETE", "/v1/tokens/{token_id}", "token revoke"),
];

/// Native routes with no command, and why.
const NOT_IN_CLI: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/v1/hosts/join",
        "the host agent's own call: `marina agent --join`",
    ),
    ("GET", "/v1/openapi.json", "the document itself: browse it at /docs"),
    (
        "GET",
        "/v1/clusters/{cluster_id}/nodes/{node_id}/is-primary",
        "a load balancer's health check (HTTP status only); `node show` has the role",
    ),
    (
        "GET",
        "/v1/clusters/{cluster_id}/nodes/{node_id}/is-replica",
        "a load balancer's health check (HTTP status only); `node show` has the role",
    ),
];

/// `/v1/companies/...` is the MedStack seed's API at its own path, not Marina's
/// native one (its clusters are the native clusters).
const SEED_PREFIXES: &[&str] = &["/v1/companies/"];

fn marina(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_marina"))
        .args(args)
        .env_remove("MARINA_URL")
        .env_remove("MARINA_TOKEN")
        .output()
        .expect("run marina")
}

fn text(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_native_route_has_a_command() {
    let app = TestApp::start_with("userspace").await;
    let (status, doc) = app.get("/v1/openapi.json").await;
    assert_eq!(status, 200);
    let mut routes = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") || SEED_PREFIXES.iter().any(|p| path.starts_with(p)) {
            continue;
        }
        for method in ops.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let listed: BTreeSet<(String, String)> = COVERAGE
        .iter()
        .chain(NOT_IN_CLI)
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = routes.difference(&listed).collect();
    assert!(missing.is_empty(), "native routes without a CLI command: {missing:?}");
    let stale: Vec<_> = listed.difference(&routes).collect();
    assert!(stale.is_empty(), "listed routes the API no longer has: {stale:?}");
    for (_, _, command) in COVERAGE {
        let mut argv: Vec<&str> = command.split(' ').collect();
        argv.push("--help");
        let o = marina(&argv);
        let (out, err) = text(&o);
        assert!(o.status.success(), "`marina {command} --help`: {err}");
        assert!(out.contains("--output"), "`marina {command}` takes --output: {out}");
    }
}

fn ok(o: &std::process::Output) -> String {
    let (out, err) = text(o);
    assert!(o.status.success(), "{out}\n{err}");
    out
}

fn json_of(o: &std::process::Output) -> Value {
    let out = ok(o);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_commands_work_end_to_end() {
    let app = TestApp::start().await;
    ok(&app.cli(&[
        "cluster", "create", "shop", "--size", "xsmall", "--nodes", "2", "--wait",
    ]));

    // Status, node list/show (with the monitor's probe) and live views.
    let out = ok(&app.cli(&["cluster", "status", "shop"]));
    assert!(out.contains("status:") && out.contains("NODE_ID"), "{out}");
    let nodes = json_of(&app.cli(&["node", "list", "shop", "-o", "json"]));
    let nodes = nodes.as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    let replica = nodes.iter().find(|n| n["role"] == "replica").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = eventually(std::time::Duration::from_secs(10), "a probe of the replica", || {
        let o = app.cli(&["node", "show", "shop", &replica, "-o", "json"]);
        async move {
            let v = json_of(&o);
            (!v["probe"].is_null()).then_some(v)
        }
    })
    .await;
    assert_eq!(shown["role"], "replica", "{shown}");
    assert_eq!(shown["probe"]["node_id"], replica.as_str(), "{shown}");
    let out = ok(&app.cli(&["node", "variables", "shop", &replica, "--like", "read_only"]));
    assert!(out.contains("read_only") && !out.contains("max_connections"), "{out}");
    ok(&app.cli(&["node", "processlist", "shop", &replica]));
    ok(&app.cli(&["node", "status-variables", "shop", &replica, "--like", "uptime"]));
    ok(&app.cli(&["node", "history", "shop", &replica]));

    // A switchover with --wait, then the events and operation list show it.
    let out = ok(&app.cli(&["cluster", "switchover", "shop", "--to", &replica, "--wait"]));
    assert!(out.contains("switching over cluster shop: done in"), "{out}");
    let c = json_of(&app.cli(&["cluster", "show", "shop", "-o", "json"]));
    let primary = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == "primary")
        .unwrap();
    assert_eq!(primary["id"], replica.as_str(), "{c}");
    let out = ok(&app.cli(&["cluster", "events", "shop"]));
    assert!(out.starts_with("TIME") && out.contains("switchover"), "{out}");
    let ops = json_of(&app.cli(&[
        "operation",
        "list",
        "--cluster",
        "shop",
        "--status",
        "succeeded",
        "-o",
        "json",
    ]));
    let types: Vec<&str> = ops
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"switchover") && types.contains(&"create_cluster"),
        "{types:?}"
    );
    let running = json_of(&app.cli(&["operation", "list", "--status", "running", "-o", "json"]));
    assert_eq!(running.as_array().unwrap().len(), 0, "{running}");
    let o = app.cli(&["operation", "list", "--status", "bogus"]);
    assert!(!o.status.success());

    // Security groups, attached with `cluster update`; failover mode and a policy.
    ok(&app.cli(&["security-group", "create", "office", "--description", "the office"]));
    let rule = json_of(&app.cli(&[
        "security-group",
        "rule",
        "add",
        "office",
        "--cidr",
        "127.0.0.2/32",
        "--from-port",
        "1",
        "--to-port",
        "65535",
        "-o",
        "json",
    ]));
    let out = ok(&app.cli(&["security-group", "show", "office"]));
    assert!(out.contains("127.0.0.2/32") && out.contains("the office"), "{out}");
    let updated = json_of(&app.cli(&[
        "cluster",
        "update",
        "shop",
        "--security-group",
        "office",
        "--failover-mode",
        "manual",
        "--backup-schedule",
        "0 3 * * *",
        "--retain-count",
        "3",
        "-o",
        "json",
    ]));
    assert_eq!(updated["failover"]["mode"], "manual", "{updated}");
    assert_eq!(updated["backup_policy"]["retain_count"], 3, "{updated}");
    assert_eq!(
        updated["security_group_ids"].as_array().map(Vec::len),
        Some(1),
        "{updated}"
    );
    let o = app.cli(&["security-group", "delete", "office"]);
    assert!(!o.status.success(), "a group in use is not deleted");
    ok(&app.cli(&[
        "cluster",
        "update",
        "shop",
        "--no-security-groups",
        "--no-backup-policy",
    ]));
    ok(&app.cli(&[
        "security-group",
        "rule",
        "delete",
        "office",
        rule["id"].as_str().unwrap(),
    ]));
    ok(&app.cli(&["security-group", "delete", "office"]));
    assert_eq!(ok(&app.cli(&["security-group", "list"])).lines().count(), 1);

    // The admin password, a backup restored into a new cluster, the window.
    let out = ok(&app.cli(&["cluster", "reset-password", "shop"]));
    assert!(out.contains("username admin, password "), "{out}");
    let b = json_of(&app.cli(&["backup", "create", "shop", "--wait", "-o", "json"]));
    let out = ok(&app.cli(&[
        "backup",
        "restore",
        b["id"].as_str().unwrap(),
        "--name",
        "shop-copy",
        "--size",
        "xsmall",
        "--nodes",
        "1",
        "--wait",
    ]));
    assert!(out.contains("cluster shop-copy active in"), "{out}");
    let o = app.cli(&["cluster", "restore-window", "shop"]);
    let (_, err) = text(&o);
    assert!(
        !o.status.success() && err.contains("binlog"),
        "no archive, no window: {err}"
    );

    // Tenants, tokens, sizes and the audit log.
    let t = json_of(&app.cli(&["tenant", "create", "acme", "-o", "json"]));
    assert!(t["secret"].as_str().is_some_and(|s| !s.is_empty()), "{t}");
    let out = ok(&app.cli(&["tenant", "list"]));
    assert!(out.contains("acme"), "{out}");
    let acme = t["tenant"]["id"].as_str().unwrap();
    assert_eq!(
        json_of(&app.cli(&["tenant", "show", acme, "-o", "json"]))["name"],
        "acme"
    );
    let me = json_of(&app.cli(&["tenant", "show", "-o", "json"]));
    assert_ne!(me["id"], acme);
    let tokens = json_of(&app.cli(&["token", "list", "-o", "json"]));
    let first = tokens[0]["id"].as_str().unwrap();
    let out = ok(&app.cli(&["token", "show", first]));
    assert!(out.contains("scopes:") && !out.contains("secret"), "{out}");
    assert!(ok(&app.cli(&["node-size", "show", "small"])).contains("Small: 2 cores"));
    let out = ok(&app.cli(&["audit", "list"]));
    assert!(out.contains("/v1/clusters") && out.contains("succeeded"), "{out}");

    // The acme tenant cannot list tenants or read the operator's.
    let acme_secret = t["secret"].as_str().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_marina"))
        .args(["tenant", "list"])
        .env("MARINA_URL", &app.url)
        .env("MARINA_TOKEN", acme_secret)
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).1.contains("HTTP 403"), "{}", text(&o).1);
    let o = Command::new(env!("CARGO_BIN_EXE_marina"))
        .args(["tenant", "show", me["id"].as_str().unwrap()])
        .env("MARINA_URL", &app.url)
        .env("MARINA_TOKEN", acme_secret)
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).1.contains("HTTP 404"), "{}", text(&o).1);

    ok(&app.cli(&["cluster", "delete", "shop-copy", "--wait"]));
    ok(&app.cli(&["cluster", "delete", "shop", "--wait"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_to_do_next() {
    // Nothing listening.
    let o = Command::new(env!("CARGO_BIN_EXE_marina"))
        .args(["cluster", "list", "--url", "http://127.0.0.1:9"])
        .env("MARINA_TOKEN", "x")
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("nothing is listening there") && err.contains("marina serve"),
        "{err}"
    );
    // No token anywhere.
    let o = marina(&["cluster", "list", "--data-dir", "/nonexistent-marina"]);
    let (_, err) = text(&o);
    assert!(err.contains("set MARINA_TOKEN") && err.contains("--data-dir"), "{err}");
    // A refused token.
    let app = TestApp::start_with("userspace").await;
    let o = Command::new(env!("CARGO_BIN_EXE_marina"))
        .args(["cluster", "list"])
        .env("MARINA_URL", &app.url)
        .env("MARINA_TOKEN", "mt_wrong")
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert!(
        err.contains("HTTP 401") && err.contains("token create --bootstrap"),
        "{err}"
    );

    // --version names the commit; completion scripts for three shells.
    let (out, _) = text(&marina(&["--version"]));
    assert!(out.starts_with("marina ") && out.contains("(commit "), "{out}");
    assert!(!out.contains("commit unknown"), "built from a git checkout: {out}");
    for (shell, mark) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef marina"),
        ("fish", "complete -c marina"),
    ] {
        let o = marina(&["completion", shell]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{err}");
        assert!(out.contains(mark), "{shell}: {}", &out[..out.len().min(200)]);
        assert!(
            out.contains("security-group") && out.contains("restore-window"),
            "{shell}"
        );
    }
}

#[test]
fn doctor_checks_this_host_and_says_what_to_fix() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let open = t.path().join("open/marina-data");
    let o = marina(&[
        "doctor",
        "--data-dir",
        open.to_str().unwrap(),
        "--listen",
        "127.0.0.1:9",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    for check in ["mariadb", "endpoints", "cgroups", "node users", "disk", "memory", "api"] {
        assert!(
            out.lines().any(|l| l[6..].starts_with(check)),
            "no {check} line:\n{out}"
        );
    }
    assert!(out.contains("ok    mariadb      10.11."), "{out}");
    assert!(
        out.contains("warn  api") && out.contains("nothing is listening"),
        "{out}"
    );
    // A data dir below a directory others cannot pass: the clone-in-/root case.
    let closed = t.path().join("closed");
    std::fs::create_dir_all(closed.join("clone")).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let data = closed.join("clone/marina-data");
    let o = marina(&[
        "doctor",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:9",
    ]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("FAIL  node users"), "{out}");
    assert!(
        out.contains(&format!("chmod o+x {}", closed.canonicalize().unwrap().display())),
        "{out}"
    );
    assert!(err.contains("1 check(s) failed"), "{err}");
}
