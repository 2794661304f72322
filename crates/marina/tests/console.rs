//! The web console (issue #8) and the API reference at `/docs` in headless Chromium: `tests/ui/console.test.mjs`
//! (playwright-core driving Debian's `/usr/bin/chromium`) against a real
//! `marina serve` — sign in and out, create a 3-node cluster from the form
//! and watch it become active, switch over and see the topology redraw,
//! create and revoke a token, a read token told what it lacks, a narrow
//! window, node add/remove/reboot, backup and restore, charts, delete with
//! its typed confirmation, security groups; each scenario saves a screenshot (`target/ui-screenshots/`) and
//! fails on any browser console error.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_drives_marina_in_a_real_browser() {
    let app = TestApp::start().await;
    let (_, ro) = app
        .post("/v1/tokens", json!({"name": "console-reader", "scopes": ["read"]}))
        .await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ui = root.join("tests/ui");
    assert!(
        ui.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: scripts/install-deps.sh --test installs it (npm ci in tests/ui)"
    );
    let shots = root.join("target/ui-screenshots");
    let out = tokio::process::Command::new("node")
        .arg(ui.join("console.test.mjs"))
        .current_dir(&ui)
        .env("MARINA_URL", &app.url)
        .env("MARINA_TOKEN", &app.token)
        .env("MARINA_READ_TOKEN", ro["secret"].as_str().unwrap())
        .env("SCREENSHOTS", &shots)
        .output()
        .await
        .expect("run node (scripts/install-deps.sh --test)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(
        out.status.success(),
        "browser scenarios failed:\n{report}\n{}",
        app.log()
    );
    for shot in [
        "api-reference",
        "signed-in",
        "cluster-created",
        "clusters",
        "switchover",
        "token-created",
        "scope-refused",
        "narrow",
    ] {
        assert!(shots.join(format!("{shot}.png")).exists(), "no screenshot {shot}");
    }
}
