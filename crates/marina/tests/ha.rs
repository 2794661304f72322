//! High availability with real servers and a write load through the writer
//! endpoint (every write a unique id, recorded when acknowledged). Scenarios are
//! named after what they do, like replication-manager's regression tests.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_after_kill_9_of_primary_loses_no_acknowledged_write() {
    let app = TestApp::start().await;
    let (c, pw) = setup(&app, "k9", 3).await;
    let id = c["id"].as_str().unwrap();
    let (wh, wp) = writer(&c);
    let old = primary(&c);
    let load = WriteLoad::start(&wh, wp, &pw);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let killed_at = Instant::now();
    signal(pid_of(&app, old["id"].as_str().unwrap()), libc::SIGKILL);
    let op = wait_op_count(&app, id, "failover", 1, Duration::from_secs(30)).await;
    let steps: Vec<&str> = op["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "elect",
            "fence_old_primary",
            "apply_relay_log",
            "promote",
            "repoint_replicas",
            "move_endpoints"
        ]
    );
    // Writes flow again through the same writer endpoint.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acked = load.stop().await;
    // Answers already on their way when the primary died arrive within
    // microseconds; anything later was written on the new primary.
    let after = killed_at + Duration::from_millis(5);
    let first_after = acked
        .iter()
        .find(|(_, t)| *t > after)
        .map(|(_, t)| t.duration_since(killed_at));
    let rto = first_after.expect("a write was acknowledged after the failover");
    eprintln!("failover RTO (kill -9 → first acknowledged write): {rto:?}");
    assert!(rto < Duration::from_secs(1), "RTO {rto:?}");

    // The old primary comes back as a replica and the cluster heals.
    let c = wait_all_active(&app, id).await;
    let new_primary = primary(&c);
    assert_ne!(new_primary["id"], old["id"]);
    let old_now = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == old["id"])
        .unwrap()
        .clone();
    assert_eq!(old_now["role"], "replica");
    assert_no_lost_writes(&c, &pw, &acked).await;
    let kinds: Vec<String> = events(&app, id)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    for k in [
        "failover_started",
        "failover_elected",
        "node_promoted",
        "failover_completed",
        "node_rejoined",
    ] {
        assert!(kinds.iter().any(|x| x == k), "missing event {k}: {kinds:?}");
    }
    // Status and health checks follow the new roles.
    let (_, st) = app.get(&format!("/v1/clusters/{id}/status")).await;
    let pn = st["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == new_primary["id"])
        .unwrap()
        .clone();
    assert_eq!(pn["probes"]["writable"], true, "{st}");
    assert_eq!(pn["probes"]["semisync"], true, "{st}");
    for n in st["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["role"] == "replica")
    {
        assert_eq!(n["probes"]["replication_io"], true, "{st}");
        assert!(n["probes"]["lag_transactions"].as_u64().is_some(), "{st}");
        assert!(
            n["probes"]["gtid_position"]
                .as_str()
                .is_some_and(|g| g.starts_with("0-")),
            "{st}"
        );
    }
    let (s, body) = app
        .get(&format!(
            "/v1/clusters/{id}/nodes/{}/is-primary",
            new_primary["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!((s, body), (200, Value::String("primary".into())));
    let (s, body) = app
        .get(&format!(
            "/v1/clusters/{id}/nodes/{}/is-primary",
            old["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!((s, body), (503, Value::String("not primary".into())));
    let (s, body) = app
        .get(&format!(
            "/v1/clusters/{id}/nodes/{}/is-replica",
            old["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!((s, body), (200, Value::String("replica".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_primary_fails_over_then_old_primary_is_fenced_and_rejoins() {
    let app = TestApp::start().await;
    let (c, pw) = setup(&app, "stop", 3).await;
    let id = c["id"].as_str().unwrap();
    let (wh, wp) = writer(&c);
    let old = primary(&c);
    let old_id = old["id"].as_str().unwrap().to_string();
    let old_port = old["port"].as_u64().unwrap() as u16;
    let load = WriteLoad::start(&wh, wp, &pw);
    let sampler = WritableSampler::start(node_addrs(&c), &pw);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = pid_of(&app, &old_id);
    let stopped_at = Instant::now();
    signal(pid, libc::SIGSTOP);
    let op = wait_op_count(&app, id, "failover", 1, Duration::from_secs(30)).await;
    eprintln!("failover steps: {}", op["steps"]);
    // Frozen for 3 s in all: the failover does not wait for it.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(stopped_at.elapsed())).await;
    signal(pid, libc::SIGCONT);
    // The old primary is fenced (read-only) and rejoins as a replica.
    let c = wait_all_active(&app, id).await;
    let stopped = Instant::now();
    let acked = load.stop().await;
    // RTO: the longest pause between acknowledged writes around the freeze.
    let around: Vec<_> = acked
        .iter()
        .copied()
        .filter(|(_, t)| *t >= stopped_at - Duration::from_millis(300))
        .collect();
    let rto = longest_pause(&around, stopped);
    eprintln!("SIGSTOP failover RTO {rto:?}");
    assert!(rto < Duration::from_millis(1500), "RTO {rto:?} for a hung primary");
    // The resumed old primary was never a second writer at the nodes.
    let (samples, double) = sampler.stop().await;
    assert!(samples > 20, "{samples} samples");
    assert_eq!(double, 0, "{double} of {samples} samples saw two writable nodes");
    let old_now = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == old_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(old_now["role"], "replica");
    // Its data-path fence is lifted once it follows the new primary.
    let ro: i64 = eventually(Duration::from_secs(10), "the old primary reachable again", || async {
        let mut conn = mysql("127.0.0.1", old_port, "admin", &pw).await.ok()?;
        conn.query_first("SELECT @@read_only").await.ok()?
    })
    .await;
    assert_eq!(ro, 1);
    assert_no_lost_writes(&c, &pw, &acked).await;
    let kinds: Vec<String> = events(&app, id)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert!(
        kinds.iter().any(|k| k == "node_fenced" || k == "old_primary_fenced"),
        "{kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_replica_degrades_the_cluster_until_restarted() {
    let app = TestApp::start().await;
    let (c, _) = setup(&app, "rep", 3).await;
    let id = c["id"].as_str().unwrap();
    let before = primary(&c)["id"].clone();
    let victim = replicas(&c)[0]["id"].as_str().unwrap().to_string();
    let pid = pid_of(&app, &victim);
    signal(pid, libc::SIGKILL);
    eventually(Duration::from_secs(10), "cluster degraded", || async {
        (cluster(&app, id).await["status"] == "degraded").then_some(())
    })
    .await;
    let c = wait_all_active(&app, id).await;
    assert_eq!(primary(&c)["id"], before, "the primary stays the primary");
    assert_ne!(pid_of(&app, &victim), pid);
    assert!(
        ops_of_type(&app, id, "failover").await.is_empty(),
        "a replica failure must not fail over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_under_load_loses_nothing_and_pauses_writes_briefly() {
    let app = TestApp::start().await;
    let (c, pw) = setup(&app, "sw", 3).await;
    let id = c["id"].as_str().unwrap();
    let (wh, wp) = writer(&c);
    let old = primary(&c);
    let target = replicas(&c)[1]["id"].as_str().unwrap().to_string();
    let load = WriteLoad::start(&wh, wp, &pw);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, body) = app
        .post(
            &format!("/v1/clusters/{id}/switchover"),
            json!({"target_node_id": target}),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    let op = app
        .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    assert_eq!(op["status"], "succeeded", "{op}");
    // The writer's autocommit statements, each a transaction of its own,
    // never hold the demotion to the whole wait for open transactions (5 s):
    // only the ones open when it began are waited for.
    let demote = op["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "demote_primary")
        .unwrap();
    let at = |f: &str| marina_common::time_fmt::parse_rfc3339(demote[f].as_str().unwrap()).unwrap();
    let took = at("finished_at") - at("started_at");
    assert!(took < time::Duration::seconds(2), "demote_primary took {took}: {op}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = Instant::now();
    let acked = load.stop().await;
    let pause = longest_pause(&acked, stopped);
    eprintln!("switchover write pause: {pause:?}");
    assert!(pause < Duration::from_secs(3), "write pause {pause:?}");
    let c = wait_all_active(&app, id).await;
    assert_eq!(primary(&c)["id"], target.as_str());
    let old_now = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == old["id"])
        .unwrap()
        .clone();
    assert_eq!(old_now["role"], "replica");
    assert_no_lost_writes(&c, &pw, &acked).await;
    // A switchover to a node that is not a replica is refused.
    let (s, body) = app
        .post(
            &format!("/v1/clusters/{id}/switchover"),
            json!({"target_node_id": target}),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    // A switchover without a body picks a target itself.
    let (s, body) = app
        .request(
            reqwest::Method::POST,
            &format!("/v1/clusters/{id}/switchover"),
            None,
            Some(&app.token.clone()),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    let op = app
        .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    assert_eq!(op["status"], "succeeded", "{op}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_with_a_long_transaction_waits_then_kills_it() {
    let app = TestApp::start_configured("kernel", "[failover]\nswitchover_wait_trx_secs = 1\n").await;
    let (c, pw) = setup(&app, "longtrx", 2).await;
    let id = c["id"].as_str().unwrap();
    let (wh, wp) = writer(&c);
    let mut long = mysql(&wh, wp, "admin", &pw).await.unwrap();
    long.query_drop("BEGIN").await.unwrap();
    long.query_drop("INSERT INTO app.t VALUES (424242)").await.unwrap();
    let started = Instant::now();
    let (s, body) = app.post(&format!("/v1/clusters/{id}/switchover"), json!({})).await;
    assert_eq!(s, 202, "{body}");
    let op = app
        .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the switchover waited for the open transaction"
    );
    // The uncommitted transaction was rolled back with its connection.
    assert!(long.query_drop("COMMIT").await.is_err());
    let c = wait_all_active(&app, id).await;
    let (h, p) = writer(&c);
    let mut conn = mysql(&h, p, "admin", &pw).await.unwrap();
    let n: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM app.t WHERE id = 424242")
        .await
        .unwrap();
    assert_eq!(n, Some(0));
}

/// One failover (kill -9 of the primary), then kill -9 of the new primary;
/// returns the cluster id and the `failover_refused` event that follows.
async fn fail_over_then_lose_the_new_primary(app: &TestApp, name: &str) -> (String, Value) {
    let (c, _) = setup(app, name, 3).await;
    let id = c["id"].as_str().unwrap().to_string();
    signal(pid_of(app, primary(&c)["id"].as_str().unwrap()), libc::SIGKILL);
    wait_op_count(app, &id, "failover", 1, Duration::from_secs(30)).await;
    let c = wait_all_active(app, &id).await;
    signal(pid_of(app, primary(&c)["id"].as_str().unwrap()), libc::SIGKILL);
    let e = eventually(Duration::from_secs(15), "failover refused", || async {
        events(app, &id)
            .await
            .into_iter()
            .find(|e| e["type"] == "failover_refused")
    })
    .await;
    (id, e)
}

/// The evaluation that records a refused failover marks the cluster failed
/// just after the event.
async fn cluster_turns_failed(app: &TestApp, id: &str) {
    eventually(Duration::from_secs(5), "cluster failed", || async {
        (cluster(app, id).await["status"] == "failed").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_is_stopped_after_the_limit() {
    let app = TestApp::start_configured("kernel", "[failover]\nlimit = 1\nmin_interval_secs = 600\n").await;
    let (id, e) = fail_over_then_lose_the_new_primary(&app, "loop").await;
    let id = id.as_str();
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("crash loop: 1 failover(s)") && msg.contains("within 600 s") && msg.contains("limit of 1"),
        "{e}"
    );
    cluster_turns_failed(&app, id).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(ops_of_type(&app, id, "failover").await.len(), 1, "no second failover");
    // An operator can still force one.
    let (s, body) = app.post(&format!("/v1/clusters/{id}/failover"), json!({})).await;
    assert_eq!(s, 202, "{body}");
    let op = app
        .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    assert_eq!(op["status"], "succeeded", "{op}");
}

/// A primary that served a while after a failover is failed over at once when
/// it dies too, even with a loop limit of 1 (the old guard held such a
/// failover back for `min_interval_secs`: 19 s without a writer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_that_served_a_while_fails_over_at_once() {
    let app = TestApp::start_configured("kernel", "[failover]\nlimit = 1\nmin_interval_secs = 4\n").await;
    let (c, pw) = setup(&app, "settled", 3).await;
    let id = c["id"].as_str().unwrap();
    let (wh, wp) = writer(&c);
    let load = WriteLoad::start(&wh, wp, &pw);
    signal(pid_of(&app, primary(&c)["id"].as_str().unwrap()), libc::SIGKILL);
    wait_op_count(&app, id, "failover", 1, Duration::from_secs(30)).await;
    let c = wait_all_active(&app, id).await;
    // The new primary serves past the settle time, then dies.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let killed_at = Instant::now();
    signal(pid_of(&app, primary(&c)["id"].as_str().unwrap()), libc::SIGKILL);
    wait_op_count(&app, id, "failover", 2, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = Instant::now();
    let acked = load.stop().await;
    // From the last write acknowledged before the kill.
    let since = killed_at - Duration::from_millis(300);
    let around: Vec<_> = acked.into_iter().filter(|(_, t)| *t >= since).collect();
    let pause = longest_pause(&around, stopped);
    eprintln!("second failover: longest write pause {pause:?}");
    assert!(
        pause < Duration::from_secs(3),
        "writes paused {pause:?} after the second crash"
    );
    assert!(
        !events(&app, id).await.iter().any(|e| e["type"] == "failover_refused"),
        "no refusal"
    );
}

/// The old primary of a failover rejoins, and the new primary dies before the
/// old one's data-path fence was lifted: the old one is promoted — and must
/// serve (a promoted node is never left fenced), with every node healing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_old_primary_promoted_soon_after_serves() {
    let app = TestApp::start_configured("kernel", "[failover]\nlimit = 1000\nmin_interval_secs = 0\n").await;
    let (c, pw) = setup(&app, "twice", 3).await;
    let id = c["id"].as_str().unwrap();
    let (wh, wp) = writer(&c);
    let load = WriteLoad::start(&wh, wp, &pw);
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(pid_of(&app, primary(&c)["id"].as_str().unwrap()), libc::SIGKILL);
    wait_op_count(&app, id, "failover", 1, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = primary(&cluster(&app, id).await)["id"].as_str().unwrap().to_string();
    signal(pid_of(&app, &second), libc::SIGKILL);
    wait_op_count(&app, id, "failover", 2, Duration::from_secs(30)).await;
    let c = tokio::time::timeout(Duration::from_secs(20), wait_all_active(&app, id))
        .await
        .unwrap_or_else(|_| panic!("the cluster did not heal\n{}", app.log()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = Instant::now();
    let acked = load.stop().await;
    assert!(
        longest_pause(&acked, stopped) < Duration::from_secs(2),
        "writes resumed"
    );
    assert_no_lost_writes(&c, &pw, &acked).await;
}

/// A slow monitor evaluation (held 1.5 s after it read the cluster) and a
/// switchover recorded meanwhile: the switchover waits for the evaluation to
/// end, and the evaluation never writes the roles it read back over the
/// switchover's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluation_never_undoes_an_operation() {
    let mut app = TestApp::start().await;
    let (c, _pw) = setup(&app, "race", 3).await;
    let id = c["id"].as_str().unwrap().to_string();
    app.kill_server();
    app.extra_env
        .push(("MARINA_DELAYPOINT".into(), "monitor:evaluate=1500".into()));
    app.spawn_server(None);
    // An evaluation is under way (they start every tick).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let old = primary(&c)["id"].as_str().unwrap().to_string();
    let (s, body) = app.post(&format!("/v1/clusters/{id}/switchover"), json!({})).await;
    assert_eq!(s, 202, "{body}");
    let op = app
        .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    assert_eq!(op["status"], "succeeded", "{op}");
    let new = op["node_id"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    // Through several slow evaluations, the roles stay the switchover's.
    for _ in 0..8 {
        let c = cluster(&app, &id).await;
        let primaries: Vec<&str> = c["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["role"] == "primary")
            .map(|n| n["id"].as_str().unwrap())
            .collect();
        assert_eq!(primaries, [new.as_str()], "{c}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Nor did it act on what it read before: the new primary, a replica in
    // that read, was never fenced as a "writable replica".
    let acted: Vec<Value> = events(&app, &id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "node_fenced" || e["type"] == "primary_writable")
        .collect();
    assert!(acted.is_empty(), "{acted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_mode_never_fails_over_and_restarts_the_primary() {
    let app = TestApp::start().await;
    let (c, pw) = setup(&app, "manual", 2).await;
    let id = c["id"].as_str().unwrap();
    let (s, patched) = app
        .request(
            reqwest::Method::PATCH,
            &format!("/v1/clusters/{id}"),
            Some(json!({"failover": {"mode": "manual"}})),
            Some(&app.token.clone()),
        )
        .await;
    assert_eq!(s, 200, "{patched}");
    assert_eq!(patched["failover"]["mode"], "manual");
    let p = primary(&c);
    let pid = pid_of(&app, p["id"].as_str().unwrap());
    // A hung primary is detected, but manual mode only reports it.
    signal(pid, libc::SIGSTOP);
    let e = eventually(Duration::from_secs(15), "manual-mode refusal", || async {
        events(&app, id)
            .await
            .into_iter()
            .find(|e| e["type"] == "failover_refused")
    })
    .await;
    assert!(e["message"].as_str().unwrap().contains("manual"), "{e}");
    cluster_turns_failed(&app, id).await;
    signal(pid, libc::SIGCONT);
    wait_all_active(&app, id).await;
    // A dead primary is restarted in place (made writable again) and serves.
    signal(pid, libc::SIGKILL);
    eventually(Duration::from_secs(15), "primary restarted", || async {
        (pid_of(&app, p["id"].as_str().unwrap()) != pid).then_some(())
    })
    .await;
    let c = wait_all_active(&app, id).await;
    assert_eq!(primary(&c)["id"], p["id"]);
    assert!(ops_of_type(&app, id, "failover").await.is_empty());
    let (h, port) = writer(&c);
    let mut conn = mysql(&h, port, "admin", &pw).await.unwrap();
    conn.query_drop("INSERT INTO app.t VALUES (1)").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_unreachable_only_from_marina_is_not_failed_over() {
    let mut app = TestApp::start().await;
    let (c, pw) = setup(&app, "blind", 3).await;
    let id = c["id"].as_str().unwrap();
    let p = primary(&c);
    let sock = app
        .data_dir()
        .join("nodes")
        .join(p["id"].as_str().unwrap())
        .join("mariadbd.sock");
    let hidden = sock.with_extension("hidden");
    // Marina's management path to the primary (its unix socket) breaks; the
    // network path replicas and clients use does not.
    app.kill_server();
    std::fs::rename(&sock, &hidden).unwrap();
    app.spawn_server(None);
    let e = eventually(Duration::from_secs(15), "failover skipped", || async {
        events(&app, id)
            .await
            .into_iter()
            .find(|e| e["type"] == "failover_skipped")
    })
    .await;
    assert!(
        e["message"].as_str().unwrap().contains("still receive its events"),
        "{e}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(ops_of_type(&app, id, "failover").await.is_empty());
    let (h, port) = writer(&c);
    let mut conn = mysql(&h, port, "admin", &pw).await.unwrap();
    conn.query_drop("INSERT INTO app.t VALUES (7)").await.unwrap();
    std::fs::rename(&hidden, &sock).unwrap();
    wait_all_active(&app, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diverged_old_primary_is_marked_failed_then_reseeded_when_allowed() {
    let mut app = TestApp::start().await;
    let (c, pw) = setup(&app, "diverge", 3).await;
    let id = c["id"].as_str().unwrap();
    let old = primary(&c);
    let old_id = old["id"].as_str().unwrap().to_string();
    let old_port = old["port"].as_u64().unwrap() as u16;
    let pid = pid_of(&app, &old_id);
    signal(pid, libc::SIGSTOP);
    wait_op_count(&app, id, "failover", 1, Duration::from_secs(30)).await;
    // With Marina down (nobody fences it), the old primary wakes up still
    // writable and takes a write the new primary never sees.
    app.kill_server();
    signal(pid, libc::SIGCONT);
    // Its port is fenced at the data path (the nftables rules outlive
    // Marina), so the write comes from a client on its host, over its unix
    // socket — the one path a fence cannot close. No replica acknowledges
    // it: it commits when the semi-sync wait times out.
    let sock = app.node_dir(&old_id).join("mariadbd.sock");
    let out = std::process::Command::new("mariadb")
        .args([
            "-uroot",
            "-S",
            sock.to_str().unwrap(),
            "-e",
            "INSERT INTO app.t VALUES (999)",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Through the network, the fenced old primary takes nothing.
    let refused = tokio::time::timeout(Duration::from_secs(2), mysql("127.0.0.1", old_port, "admin", &pw)).await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "the fenced old primary accepted a connection"
    );
    // A clean shutdown keeps it (crash recovery as a replica would discard an
    // unacknowledged transaction, which is what Marina's hard fence relies on).
    signal(pid, libc::SIGTERM);
    eventually(Duration::from_secs(30), "old primary stopped", || async {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    })
    .await;
    app.spawn_server(None);
    let start = Instant::now();
    let node = loop {
        let c = cluster(&app, id).await;
        let n = c["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == old_id.as_str())
            .cloned()
            .unwrap();
        if n["status"] == "failed" {
            break n;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let ev: Vec<String> = events(&app, id)
                .await
                .iter()
                .map(|e| e["message"].to_string())
                .collect();
            panic!("old primary not failed: {n}\n{ev:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        node["status_reason"].as_str().unwrap().contains("not contained"),
        "{node}"
    );
    // It was fenced: read-only, not attached to the new primary, and cut
    // off at the data path (a diverged node stays so until it is reseeded);
    // looked at through its unix socket.
    let sock = app.node_dir(&old_id).join("mariadbd.sock");
    let sql = |q: &str| {
        let out = std::process::Command::new("mariadb")
            .args(["-uroot", "-N", "-S", sock.to_str().unwrap(), "-e", q])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(sql("SELECT @@read_only"), "1");
    assert_eq!(sql("SHOW SLAVE STATUS"), "", "a diverged node must not be attached");
    let cut = tokio::time::timeout(Duration::from_secs(2), mysql("127.0.0.1", old_port, "admin", &pw)).await;
    assert!(!matches!(cut, Ok(Ok(_))), "a diverged node is not reachable over TCP");

    // With `auto_reseed` on, the monitor rebuilds it from the new primary: it
    // loses its errant write and replicates again.
    let (s, patched) = app
        .request(
            reqwest::Method::PATCH,
            &format!("/v1/clusters/{id}"),
            Some(serde_json::json!({"failover": {"mode": "automatic", "auto_reseed": true}})),
            Some(&app.token.clone()),
        )
        .await;
    assert_eq!(s, 200, "{patched}");
    assert_eq!(patched["failover"]["auto_reseed"], true);
    eventually(Duration::from_secs(60), "diverged node reseeded and active", || async {
        let reseeded = events(&app, id).await.iter().any(|e| e["type"] == "node_reseeded");
        let c = cluster(&app, id).await;
        let n = c["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == old_id.as_str())
            .cloned()?;
        (reseeded && n["status"] == "active" && c["status"] == "active").then_some(())
    })
    .await;
    let mut conn = mysql("127.0.0.1", old_port, "admin", &pw).await.unwrap();
    let errant: Option<i64> = conn.query_first("SELECT id FROM app.t WHERE id = 999").await.unwrap();
    assert_eq!(errant, None, "the errant write is gone");
    let row: Option<mysql_async::Row> = conn.query_first("SHOW SLAVE STATUS").await.unwrap();
    assert!(row.is_some(), "it replicates again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_killed_during_failover_finishes_it_after_restart() {
    let mut app = TestApp::start().await;
    let (c, pw) = setup(&app, "fpcrash", 3).await;
    let id = c["id"].as_str().unwrap();
    app.kill_server();
    app.spawn_server(Some("failover:promote:after"));
    signal(pid_of(&app, primary(&c)["id"].as_str().unwrap()), libc::SIGKILL);
    assert!(
        app.wait_server_exit(Duration::from_secs(30)),
        "failpoint did not fire\n{}",
        app.log()
    );
    app.spawn_server(None);
    wait_op_count(&app, id, "failover", 1, Duration::from_secs(30)).await;
    let c = wait_all_active(&app, id).await;
    let (h, port) = writer(&c);
    let mut conn = mysql(&h, port, "admin", &pw).await.unwrap();
    conn.query_drop("INSERT INTO app.t VALUES (5)").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_answer_without_a_token_only_when_public() {
    let app = TestApp::start_configured("kernel", "public_health_checks = true").await;
    let (c, _) = app.create_cluster("lb", 2).await;
    let id = c["id"].as_str().unwrap();
    let p = primary(&c)["id"].as_str().unwrap().to_string();
    let r = replicas(&c)[0]["id"].as_str().unwrap().to_string();
    let path = |node: &str, what: &str| format!("/v1/clusters/{id}/nodes/{node}/{what}");
    let answer = eventually(Duration::from_secs(10), "primary healthy", || async {
        let (s, b) = app
            .request(reqwest::Method::GET, &path(&p, "is-primary"), None, None)
            .await;
        (s == 200).then_some(b)
    })
    .await;
    assert_eq!(answer, Value::String("primary".into()));
    let (s, b) = app
        .request(reqwest::Method::GET, &path(&r, "is-primary"), None, None)
        .await;
    assert_eq!((s, b), (503, Value::String("not primary".into())));
    let (s, b) = app
        .request(reqwest::Method::GET, &path(&r, "is-replica"), None, None)
        .await;
    assert_eq!((s, b), (200, Value::String("replica".into())));
    let (s, b) = app
        .request(reqwest::Method::GET, &path(&p, "is-replica"), None, None)
        .await;
    assert_eq!((s, b), (503, Value::String("not replica".into())));
    // A wrong token is still refused, and an unknown node is a 404.
    let (s, _) = app
        .request(reqwest::Method::GET, &path(&p, "is-primary"), None, Some("mrn_wrong"))
        .await;
    assert_eq!(s, 401);
    let (s, _) = app
        .request(reqwest::Method::GET, &path("nd_nope", "is-primary"), None, None)
        .await;
    assert_eq!(s, 404);
    // Without the option, a token is required.
    let private = TestApp::start().await;
    let (s, b) = private
        .request(
            reqwest::Method::GET,
            &format!("/v1/clusters/{id}/nodes/{p}/is-primary"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 401, "{b}");
}

/// Runs SQL as MariaDB's root on a node through its unix socket (the test
/// runs as root; root@localhost authenticates by unix socket).
fn root_sql(app: &TestApp, node_id: &str, sql: &str) -> String {
    let sock = app.node_dir(node_id).join("mariadbd.sock");
    let out = std::process::Command::new("mariadb")
        .arg(format!("--socket={}", sock.display()))
        .args(["-uroot", "-e", sql])
        .output()
        .expect("the mariadb client is installed");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One field of a node's `SHOW SLAVE STATUS`.
fn slave_status(app: &TestApp, node_id: &str, field: &str) -> String {
    let out = root_sql(app, node_id, "SHOW SLAVE STATUS\\G");
    out.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{field}: ")).map(str::to_string))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_a_corrupt_relay_log_fetches_again_instead_of_failing() {
    let app = TestApp::start().await;
    let (c, pw) = setup(&app, "relay", 2).await;
    let id = c["id"].as_str().unwrap();
    let r = replicas(&c)[0]["id"].as_str().unwrap().to_string();
    let maintenance = |on: bool| {
        let path = format!("/v1/clusters/{id}/nodes/{r}/maintenance");
        let app = &app;
        async move {
            let (s, body) = app.post(&path, json!({ "enabled": on })).await;
            assert_eq!(s, 202, "{body}");
            let op = app
                .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(30))
                .await;
            assert_eq!(op["status"], "succeeded", "{op}");
        }
    };
    // In maintenance the monitor leaves the replica alone while we break it.
    maintenance(true).await;
    root_sql(&app, &r, "STOP SLAVE SQL_THREAD");
    let (wh, wp) = writer(&c);
    let mut conn = mysql(&wh, wp, "admin", &pw).await.unwrap();
    for i in 1..=20u64 {
        conn.exec_drop("INSERT INTO app.t VALUES (?)", (i,)).await.unwrap();
    }
    let written: String = conn.query_first("SELECT @@gtid_binlog_pos").await.unwrap().unwrap();
    drop(conn);
    // Once the replica received everything, the rows are in its relay log, not
    // applied, and nothing writes to it. Break the next event the SQL thread
    // would read, in place: its checksum no longer holds.
    eventually(Duration::from_secs(20), "the replica received the rows", || async {
        (slave_status(&app, &r, "Gtid_IO_Pos") == written).then_some(())
    })
    .await;
    let file = slave_status(&app, &r, "Relay_Log_File");
    let pos: u64 = slave_status(&app, &r, "Relay_Log_Pos").parse().unwrap();
    let path = app
        .node_dir(&r)
        .join("data")
        .join(std::path::Path::new(&file).file_name().unwrap());
    let bytes = std::fs::read(&path).unwrap();
    let body = pos as usize + 19;
    assert!(
        bytes.len() > body + 8,
        "relay log {} holds no event after {pos}",
        path.display()
    );
    let flipped: Vec<u8> = bytes[body..body + 8].iter().map(|b| b ^ 0xff).collect();
    std::os::unix::fs::FileExt::write_all_at(
        &std::fs::OpenOptions::new().write(true).open(&path).unwrap(),
        &flipped,
        body as u64,
    )
    .unwrap();
    root_sql(&app, &r, "START SLAVE SQL_THREAD");
    eventually(
        Duration::from_secs(20),
        "the SQL thread stops on the relay log",
        || async { (slave_status(&app, &r, "Slave_SQL_Running") == "No").then_some(()) },
    )
    .await;
    assert_eq!(slave_status(&app, &r, "Last_SQL_Errno"), "1594");
    // Back in service: the monitor sees a relay-log error, not a data conflict.
    maintenance(false).await;
    wait_all_active(&app, id).await;
    let node = &replicas(&cluster(&app, id).await)[0];
    let mut conn = mysql("127.0.0.1", node["port"].as_u64().unwrap() as u16, "admin", &pw)
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let n: Option<u64> = conn.query_first("SELECT COUNT(*) FROM app.t").await.unwrap();
        if n == Some(20) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the replica has {n:?} rows of 20"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ev = events(&app, id).await;
    assert!(
        ev.iter()
            .any(|e| e["type"] == "relay_log_repaired" && e["node_id"] == r.as_str()),
        "{ev:#?}"
    );
    assert!(!ev.iter().any(|e| e["type"] == "node_failed"), "{ev:#?}");
    wait_all_active(&app, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_to_a_lagging_replica_is_refused_and_readers_avoid_it() {
    let app = TestApp::start_configured(
        "kernel",
        "[failover]\nswitchover_max_lag_secs = 2\n[monitor]\nmax_reader_lag_secs = 2\n",
    )
    .await;
    let (c, pw) = setup(&app, "lagging", 3).await;
    let id = c["id"].as_str().unwrap();
    let laggard = replicas(&c)[0]["id"].as_str().unwrap().to_string();
    // The replica applies events 30 s late: with writes flowing, its lag grows.
    root_sql(
        &app,
        &laggard,
        "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 30; START SLAVE",
    );
    let (wh, wp) = writer(&c);
    let load = WriteLoad::start(&wh, wp, &pw);
    eventually(Duration::from_secs(20), "replica lagging", || async {
        let (_, st) = app.get(&format!("/v1/clusters/{id}/status")).await;
        let lag = st["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["node_id"] == laggard.as_str())?["probes"]["lag_seconds"]
            .as_f64()?;
        (lag > 3.0).then_some(())
    })
    .await;
    // The reader endpoint leaves it: new reader connections land only on the
    // replica that keeps up (checked at the server each one reaches).
    let laggard_server = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == laggard.as_str())
        .unwrap()["server_id"]
        .as_u64()
        .unwrap();
    let (rh, rp) = (
        c["endpoints"]["reader"]["host"].as_str().unwrap().to_string(),
        c["endpoints"]["reader"]["port"].as_u64().unwrap() as u16,
    );
    eventually(Duration::from_secs(10), "readers avoid the lagging replica", || async {
        let mut seen = Vec::new();
        for _ in 0..12 {
            let mut conn = mysql(&rh, rp, "admin", &pw).await.ok()?;
            seen.push(conn.query_first::<u64, _>("SELECT @@server_id").await.ok()??);
        }
        (!seen.contains(&laggard_server)).then_some(())
    })
    .await;
    for _ in 0..24 {
        let mut conn = mysql(&rh, rp, "admin", &pw).await.unwrap();
        let server: Option<u64> = conn.query_first("SELECT @@server_id").await.unwrap();
        assert_ne!(
            server,
            Some(laggard_server),
            "a reader connection reached the lagging replica"
        );
    }
    let (s, body) = app
        .post(
            &format!("/v1/clusters/{id}/switchover"),
            json!({"target_node_id": laggard}),
        )
        .await;
    assert_eq!(s, 409, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("lags") && msg.contains("limit 2 s"), "{msg}");
    let acked = load.stop().await;
    assert!(!acked.is_empty());
    // Without a target, the healthy replica is chosen.
    let (s, body) = app.post(&format!("/v1/clusters/{id}/switchover"), json!({})).await;
    assert_eq!(s, 202, "{body}");
    let op = app
        .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_ne!(op["node_id"], laggard.as_str());
}

/// A replica killed between a replicated DDL statement and the row that
/// records its GTID (not one transaction) restarts with its binlog one GTID
/// ahead of its replication position; strict mode refuses the statement
/// again. The test puts a replica in that state (the position set back
/// before a DDL it applied) under a writer: the monitor takes the position
/// from its binlog instead of failing it, and it catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_position_a_crash_lost_takes_it_from_its_binlog() {
    let app = TestApp::start().await;
    let (c, pw) = setup(&app, "lostpos", 2).await;
    let id = c["id"].as_str().unwrap();
    let p = primary(&c)["id"].as_str().unwrap().to_string();
    let r = replicas(&c)[0]["id"].as_str().unwrap().to_string();
    let (s, body) = app
        .post(
            &format!("/v1/clusters/{id}/nodes/{r}/maintenance"),
            json!({ "enabled": true }),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    let op = app
        .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    assert_eq!(op["status"], "succeeded", "{op}");
    let gtid = |node: &str| {
        root_sql(&app, node, "SELECT @@gtid_binlog_pos")
            .lines()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    let before = gtid(&p);
    root_sql(&app, &p, "CREATE TABLE app.ddl_probe (id INT PRIMARY KEY)");
    let after = gtid(&p);
    eventually(Duration::from_secs(20), "the replica applied the DDL", || async {
        (gtid(&r) == after).then_some(())
    })
    .await;
    root_sql(
        &app,
        &r,
        &format!("STOP SLAVE; SET GLOBAL gtid_slave_pos = '{before}'; START SLAVE"),
    );
    eventually(Duration::from_secs(20), "strict mode refuses the DDL again", || async {
        (slave_status(&app, &r, "Last_SQL_Errno") == "1950").then_some(())
    })
    .await;
    let (wh, wp) = writer(&c);
    let load = WriteLoad::start(&wh, wp, &pw);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, body) = app
        .post(
            &format!("/v1/clusters/{id}/nodes/{r}/maintenance"),
            json!({ "enabled": false }),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    let op = app
        .wait_op(body["operation"]["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    assert_eq!(op["status"], "succeeded", "{op}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acked = load.stop().await;
    let c = wait_all_active(&app, id).await;
    let end = gtid(&p);
    eventually(Duration::from_secs(20), "the replica caught up", || async {
        (gtid(&r) == end).then_some(())
    })
    .await;
    assert_no_lost_writes(&c, &pw, &acked).await;
    let ev = events(&app, id).await;
    assert!(
        ev.iter()
            .any(|e| e["type"] == "replica_position_repaired" && e["node_id"] == r.as_str()),
        "{ev:#?}"
    );
    assert!(!ev.iter().any(|e| e["type"] == "node_failed"), "{ev:#?}");
}
