//! `marina agent` serving its API (issue 23): after joining, the agent
//! serves the `NodeRuntime` calls over mutual TLS; the control plane's
//! heartbeat makes its host `active` and marks a silent one `down`; a real
//! mariadbd runs on the agent through `AgentClient` and survives the
//! agent's SIGKILL (a restarted agent adopts it); only the control plane's
//! certificate is served, but on the peer route, which serves a copy
//! offered under a one-time ticket to the one agent it names; a call with an older epoch than the agent has
//! seen is refused (`stale_epoch`), across agent restarts — and a control
//! plane left behind by a newer epoch loses the host.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use marina_agent::AgentClient;
use marina_agent::tls::Identity;
use marina_engine::NodeAddr;
use marina_engine::cnf::NodeConfig;
use marina_engine::users::{AccountHashes, MGMT_USER, init_sql, native_password_hash};
use marina_runtime::{NodeRuntime, NodeSpec, ProcessState, RuntimeError};
use serde_json::{Value, json};

fn spec(node_id: &str, port: u16) -> NodeSpec {
    let hashes = AccountHashes {
        mgmt: native_password_hash("mgmt-pw"),
        repl: native_password_hash("repl-pw"),
        admin: native_password_hash("admin-pw"),
    };
    NodeSpec {
        node_id: node_id.into(),
        config: NodeConfig {
            // The agent puts the node under its own directory, whatever is sent.
            node_dir: "/nonexistent/control-plane/path".into(),
            bind_address: "127.0.0.1".into(),
            port,
            server_id: 1,
            buffer_pool_bytes: 128 << 20,
            max_connections: 50,
            semisync: true,
            semisync_timeout_ms: 1000,
            starts_as_replica: false,
            run_uid: Some(1_599_000_002),
        },
        init_sql: init_sql(&hashes),
        version: "10.11".into(),
        limits: marina_runtime::cgroup::Limits {
            memory_bytes: 1 << 30,
            cpus: 1,
        },
        mgmt: NodeAddr {
            host: "127.0.0.1".into(),
            port,
            user: MGMT_USER.into(),
            password: "mgmt-pw".into(),
            socket: Some("/nonexistent/control-plane/path/mariadbd.sock".into()),
        },
    }
}

/// An error with its sources.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s = format!("{s}: {c}");
        cur = c.source();
    }
    s
}

/// Trusts any server: isolates the agent's refusal of a client without a
/// certificate from the client's own checks.
#[derive(Debug)]
struct AnyServer;

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn identity(dir: &std::path::Path, cert: &str, key: &str) -> Identity {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    Identity::from_pem(&read(cert), &read(key), &read("ca.pem")).unwrap()
}

fn client(id: &str, port: u16, identity: &Identity, epoch: &Arc<AtomicU64>) -> AgentClient {
    let epoch = epoch.clone();
    AgentClient::new(
        id,
        "127.0.0.1",
        port,
        identity,
        Arc::new(move || epoch.load(Ordering::SeqCst)),
    )
    .unwrap()
}

fn remote_code(e: RuntimeError) -> (String, String) {
    match e {
        RuntimeError::Remote { code, message, .. } => (code, message),
        other => panic!("not an agent error: {other}"),
    }
}

async fn host_status(app: &TestApp, id: &str, want: &str) -> Value {
    eventually(Duration::from_secs(10), &format!("host {id} {want}"), || async {
        let (_, h) = app.get(&format!("/v1/hosts/{id}")).await;
        (h["status"] == want).then_some(h)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_serves_its_host_over_mutual_tls() {
    let app = TestApp::start_configured("kernel", "[hosts]\nheartbeat_ms = 200\ndown_after_ms = 1500\n").await;
    let (s, t) = app.post("/v1/hosts/join-tokens", json!({"zone": "b"})).await;
    assert_eq!(s, 201, "{t}");
    let secret = t["secret"].as_str().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let dir = tmp.path().join("agent");
    let (agent, port) = AgentProc::spawn(
        &dir,
        "127.0.0.1:0",
        &["--join", &app.url, "--address", "127.0.0.1"],
        &[("MARINA_JOIN_TOKEN", &secret)],
    );
    assert!(agent.output().contains("joined as host hs_"), "{}", agent.output());
    let host_json: Value = serde_json::from_slice(&std::fs::read(dir.join("host.json")).unwrap()).unwrap();
    let id = host_json["id"].as_str().unwrap().to_string();

    // The control plane's heartbeat makes it active with its facts.
    let h = host_status(&app, &id, "active").await;
    assert_eq!(
        (h["zone"].clone(), h["agent_port"].clone()),
        (json!("b"), json!(port)),
        "{h}"
    );
    assert!(h["seen_at"].is_string() && h["cpus"].as_u64().unwrap() >= 1, "{h}");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"), "{h}");
    // Until nodes' calls go to their host's agent, clusters stay on the
    // local host.
    let (c, _) = app.create_cluster("stays-local", 1).await;
    assert_ne!(c["nodes"][0]["host_id"], id.as_str(), "{c}");

    // The control plane's own identity drives a real node on the agent.
    let cp = identity(&app.data_dir().join("ca"), "cp.pem", "cp.key");
    let epoch = Arc::new(AtomicU64::new(1));
    let rt = client(&id, port, &cp, &epoch);
    let facts = rt.heartbeat(Duration::from_secs(2)).await.unwrap();
    assert_eq!((facts.host_id.as_str(), facts.epoch), (id.as_str(), 1));
    assert!(facts.nodes_dir.starts_with(&dir.display().to_string()), "{facts:?}");
    // An id the store knows (the local cluster's node): the control
    // plane's sweep removes node directories on agent hosts that no row
    // names (see tests/fleet.rs), and this node is driven by hand.
    let node_id = c["nodes"][0]["id"].as_str().unwrap().to_string();
    let node = node_id.as_str();
    let s = spec(node, free_port());
    rt.prepare(&s).await.unwrap();
    let pid = rt.start(&s).await.unwrap();
    assert_eq!(rt.state(node).await, ProcessState::Running(pid));
    assert_eq!(
        mariadbd_pids_under(&dir.join("nodes")),
        vec![pid],
        "the node runs under the agent's dir"
    );
    assert!(dir.join("nodes").join(node).join("data").is_dir());
    assert!(!std::path::Path::new("/nonexistent").exists());
    assert!(rt.disk_usage(node).await > 1 << 20);
    assert_eq!(rt.nodes_on_disk().await.unwrap(), vec![node.to_string()]);
    let mut binlog = rt.open_binlog(node, "mariadb-bin.000001").await.unwrap();
    let mut head = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut binlog.reader, &mut head)
        .await
        .unwrap();
    assert_eq!(&head[..4], b"\xfebin", "a binlog's magic crosses intact");
    assert!(binlog.modified.is_some());
    let (code, _) = remote_code(rt.open_binlog(node, "mariadb-bin.999999").await.err().unwrap());
    assert_eq!(code, "not_found");

    // Bad calls are the error shape, refused before anything acts.
    let raw = reqwest::Client::builder()
        .tls_backend_preconfigured(cp.client_config(&id).unwrap())
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{port}");
    for (method, path, epoch_header, body, want) in [
        (reqwest::Method::GET, "/v1/host", None, None, 400),
        (reqwest::Method::GET, "/v1/host", Some("x"), None, 400),
        (reqwest::Method::GET, "/v1/nodes/ND..x", Some("1"), None, 400),
        (
            reqwest::Method::PUT,
            "/v1/nodes/nd_x",
            Some("1"),
            Some("{\"port\": \"x\"}"),
            400,
        ),
        (reqwest::Method::POST, "/v1/nodes/nd_x/stop", Some("1"), Some("[]"), 400),
        (reqwest::Method::GET, "/v1/nodes/nd_x/binlogs/..", Some("1"), None, 404),
        (reqwest::Method::GET, "/v1/nope", Some("1"), None, 404),
    ] {
        let mut req = raw.request(method, format!("{base}{path}"));
        if let Some(e) = epoch_header {
            req = req.header("x-marina-epoch", e);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let e: Value = resp.json().await.unwrap();
        assert_eq!(status, want, "{path}: {e}");
        assert!(
            e["error"]["code"].is_string() && e["error"]["message"].is_string(),
            "{e}"
        );
    }

    // Only the control plane's certificate is served: not an agent's
    // (signed by the same CA), not none.
    let own = identity(&dir, "cert.pem", "key.pem");
    let (code, message) = remote_code(
        client(&id, port, &own, &epoch)
            .heartbeat(Duration::from_secs(2))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "forbidden", "{message}");
    peer_copies(&raw, &own, &base, &id, node).await;
    let anonymous = reqwest::Client::builder()
        .tls_backend_preconfigured(
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServer))
                .with_no_client_auth(),
        )
        .build()
        .unwrap();
    let refused = anonymous
        .get(format!("https://127.0.0.1:{port}/v1/host"))
        .header("x-marina-epoch", "1")
        .send()
        .await
        .expect_err("served without a client certificate");
    let chain = error_chain(&refused);
    assert!(chain.contains("CertificateRequired"), "{chain}");

    // SIGKILL of the agent: the node keeps running, the host goes down; a
    // restarted agent (no join again) is heard and adopts the node.
    agent.kill_leaving_nodes();
    let h = host_status(&app, &id, "down").await;
    assert!(h["seen_at"].is_string(), "{h}");
    assert_eq!(
        mariadbd_pids_under(&dir.join("nodes")),
        vec![pid],
        "the node outlived its agent"
    );
    let listen = format!("127.0.0.1:{port}");
    let agent = AgentProc::spawn(&dir, &listen, &[], &[]).0;
    assert!(agent.output().contains("has joined as host"), "{}", agent.output());
    host_status(&app, &id, "active").await;
    assert_eq!(rt.start(&s).await.unwrap(), pid, "a restarted agent adopts its node");

    // A newer epoch fences the older: its calls are refused and nothing
    // acts, across an agent restart; the control plane left at epoch 1
    // loses the host.
    let newer = Arc::new(AtomicU64::new(7));
    let leader = client(&id, port, &cp, &newer);
    assert_eq!(leader.heartbeat(Duration::from_secs(2)).await.unwrap().epoch, 7);
    let (code, message) = remote_code(rt.stop(node, Duration::from_secs(5)).await.unwrap_err());
    assert_eq!(code, "stale_epoch", "{message}");
    assert_eq!(
        leader.state(node).await,
        ProcessState::Running(pid),
        "a stale stop acted"
    );
    host_status(&app, &id, "down").await;
    agent.kill_leaving_nodes();
    let _agent = AgentProc::spawn(&dir, &listen, &[], &[]).0;
    epoch.store(6, Ordering::SeqCst);
    let (code, _) = remote_code(rt.kill(node).await.unwrap_err());
    assert_eq!(code, "stale_epoch", "a restarted agent forgot the epoch");
    assert_eq!(leader.state(node).await, ProcessState::Running(pid));

    // The newer control plane removes the node: process and files gone.
    leader.destroy(node).await.unwrap();
    assert_eq!(leader.state(node).await, ProcessState::Stopped);
    assert!(mariadbd_pids_under(&dir.join("nodes")).is_empty());
    assert!(!dir.join("nodes").join(node).exists());
    assert!(leader.nodes_on_disk().await.unwrap().is_empty());
}

/// The peer route of the agent of `host` (at `base`), which runs `node`:
/// an agent (`agent`, holding `host`'s own certificate here) pulls a copy
/// the control plane (`cp`) offered to it, once; a ticket offered to
/// another host, a used or a made-up one is refused before anything runs;
/// an offer needs the control plane's certificate.
async fn peer_copies(cp: &reqwest::Client, agent: &Identity, base: &str, host: &str, node: &str) {
    let offer = |peer: &str| {
        let req = cp
            .post(format!("{base}/v1/nodes/{node}/copy-offer"))
            .header("x-marina-epoch", "1")
            .json(&json!({"work": "peer-copy.tmp", "peer_host": peer}));
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()["ticket"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let puller = reqwest::Client::builder()
        .tls_backend_preconfigured(agent.client_config(host).unwrap())
        .build()
        .unwrap();
    let pull = |ticket: String| puller.post(format!("{base}/v1/peer/copies/{ticket}")).send();
    let refused = |resp: reqwest::Response, why: &'static str| async move {
        assert_eq!(resp.status(), 403, "{why}");
        let e: Value = resp.json().await.unwrap();
        assert_eq!(e["error"]["code"], "forbidden", "{why}: {e}");
    };
    let elsewhere = offer("hs_0000000000000000").await;
    refused(pull(elsewhere).await.unwrap(), "offered to another host").await;
    refused(pull("made-up".into()).await.unwrap(), "a made-up ticket").await;
    let resp = puller
        .post(format!("{base}/v1/nodes/{node}/copy-offer"))
        .header("x-marina-epoch", "1")
        .json(&json!({"work": "peer-copy.tmp", "peer_host": host}))
        .send()
        .await
        .unwrap();
    refused(resp, "an agent cannot make offers").await;

    let ticket = offer(host).await;
    let resp = pull(ticket.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.len() > 1 << 20, "a whole copy: {} bytes", bytes.len());
    assert_eq!(&bytes[..8], b"XBSTCK01", "mbstream bytes");
    refused(pull(ticket).await.unwrap(), "a used ticket").await;
}

/// Nodes on an agent host (both hosts on loopback here, the agent's nodes
/// under its own directory): with the local host and an agent host active,
/// a 2-node cluster spreads one node on each (zones `local` and `b`); the
/// agent's node is started, managed over TCP and replicates like any other;
/// when it is killed under a writer it is restarted through its agent (or,
/// as the primary, failed over and brought back as a replica) with no
/// acknowledged write lost; a backup is taken from the node on the control
/// plane's host; and the cluster's delete removes the agent's node, process
/// and files.
/// An agent on loopback (zone b) joined to `app` and active: its temporary
/// directory (the agent's is `agent` in it), the process, its host id.
async fn join_loopback_agent(app: &TestApp) -> (tempfile::TempDir, AgentProc, String) {
    let (_, t) = app.post("/v1/hosts/join-tokens", json!({"zone": "b"})).await;
    let secret = t["secret"].as_str().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let dir = tmp.path().join("agent");
    let (agent, _) = AgentProc::spawn(
        &dir,
        "127.0.0.1:0",
        &["--join", &app.url, "--address", "127.0.0.1"],
        &[("MARINA_JOIN_TOKEN", &secret)],
    );
    let host: Value = serde_json::from_slice(&std::fs::read(dir.join("host.json")).unwrap()).unwrap();
    let id = host["id"].as_str().unwrap().to_string();
    host_status(app, &id, "active").await;
    (tmp, agent, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_spreads_over_an_agent_host() {
    let app = TestApp::start_configured("kernel", "[hosts]\nheartbeat_ms = 200\ndown_after_ms = 1500\n").await;
    let (tmp, _agent, id) = join_loopback_agent(&app).await;
    let dir = tmp.path().join("agent");

    let (c, pw) = setup(&app, "spread", 2).await;
    let cid = c["id"].as_str().unwrap().to_string();
    let nodes = c["nodes"].as_array().unwrap();
    let on_agent: Vec<&Value> = nodes.iter().filter(|n| n["host_id"] == id.as_str()).collect();
    assert_eq!(on_agent.len(), 1, "one node per host: {c}");
    let remote = on_agent[0].clone();
    assert_eq!(remote["zone"], "b", "{remote}");
    let rid = remote["id"].as_str().unwrap().to_string();
    let pids = mariadbd_pids_under(&dir.join("nodes"));
    assert_eq!(pids.len(), 1, "the agent's node runs under its directory");
    assert_eq!(
        app.mariadbd_pids().len(),
        1,
        "the other runs on the control plane's host"
    );
    assert!(dir.join("nodes").join(&rid).join("data").is_dir());
    // The agent's own probes of its node reach the status; the control
    // plane's machine has no such view of its own node.
    let status = eventually(Duration::from_secs(10), "the agent's view of its node", || async {
        let (_, s) = app.get(&format!("/v1/clusters/{cid}/status")).await;
        let nodes = s["nodes"].as_array()?.clone();
        let remote = nodes.iter().find(|n| n["node_id"] == rid.as_str())?;
        (remote["host_probe"]["reachable"] == true).then_some(nodes)
    })
    .await;
    for n in &status {
        let on_agent = n["node_id"] == rid.as_str();
        assert_eq!(n["host_probe"].is_object(), on_agent, "{n}");
    }

    // Killed under a writer: restarted through its agent, nothing lost.
    let (wh, wp) = writer(&c);
    let load = WriteLoad::start(&wh, wp, &pw);
    tokio::time::sleep(Duration::from_millis(800)).await;
    signal(pids[0] as i32, libc::SIGKILL);
    eventually(Duration::from_secs(30), "the agent's node back", || async {
        let now = mariadbd_pids_under(&dir.join("nodes"));
        (now.len() == 1 && now[0] != pids[0]).then_some(())
    })
    .await;
    let c = wait_all_active(&app, &cid).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acked = load.stop().await;
    assert_no_lost_writes(&c, &pw, &acked).await;
    let restarted = events(&app, &cid)
        .await
        .iter()
        .any(|e| e["node_id"] == rid.as_str() && (e["type"] == "node_restarted" || e["type"] == "node_rejoined"));
    assert!(restarted || primary_id(&c).as_deref() != Some(rid.as_str()), "{c}");

    // Backups come from the node on the control plane's host.
    let b = take_backup(&app, &cid, json!({})).await;
    assert_ne!(b["source_node_id"], rid.as_str(), "{b}");

    // The delete removes the agent's node too.
    let op = app.delete_cluster(&cid).await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert!(mariadbd_pids_under(&dir.join("nodes")).is_empty());
    assert!(!dir.join("nodes").join(&rid).exists());
}

/// A move (`move_node`, started by draining a host) resumes after the control
/// plane is killed in any of its steps: a 2-node cluster over the control
/// plane's host and an agent host on loopback, under a writer; each round
/// drains one host (its nodes move to the other, a primary by a switchover
/// to its replacement) with the control plane killed at one step, restarted,
/// and the move finished; then the host is uncordoned for the next round.
/// Nothing acknowledged is lost and no node or directory is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_resume_after_a_crash_in_any_step() {
    let mut app = TestApp::start_configured("kernel", "[hosts]\nheartbeat_ms = 200\ndown_after_ms = 1500\n").await;
    let (tmp, _agent, agent_host) = join_loopback_agent(&app).await;
    let dir = tmp.path().join("agent");
    let (_, hosts) = app.get("/v1/hosts").await;
    let local_host = hosts["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["local"] == true)
        .and_then(|h| h["id"].as_str())
        .unwrap()
        .to_string();

    let (c, pw) = setup(&app, "moving", 2).await;
    let cid = c["id"].as_str().unwrap().to_string();
    let (wh, wp) = writer(&c);
    let load = WriteLoad::start(&wh, wp, &pw);
    for (drained, point) in [
        (&agent_host, "move_node:copy_data:after"),
        (&local_host, "move_node:switchover:promote:after"),
        (&agent_host, "move_node:join:after"),
        (&local_host, "move_node:delete_node:before"),
    ] {
        app.crash_during(
            point,
            reqwest::Method::POST,
            &format!("/v1/hosts/{drained}/drain"),
            Some(json!({})),
        )
        .await;
        let began = std::time::Instant::now();
        eventually(
            Duration::from_secs(120),
            &format!("host {drained} drained after a crash at {point}"),
            || async {
                let (_, h) = app.get(&format!("/v1/hosts/{drained}")).await;
                if began.elapsed() > Duration::from_secs(110) {
                    let (_, c) = app.get(&format!("/v1/clusters/{cid}")).await;
                    let (_, ops) = app.get(&format!("/v1/clusters/{cid}/operations")).await;
                    let (_, ev) = app.get(&format!("/v1/clusters/{cid}/events?limit=30")).await;
                    panic!(
                        "host {drained} not drained after a crash at {point}: {h}\ncluster: {c}\noperations: {}\nevents: {ev}\n{}",
                        ops["data"][0],
                        app.log()
                            .lines()
                            .rev()
                            .filter(|l| !l.contains("DEBUG"))
                            .take(60)
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                }
                let (_, c) = app.get(&format!("/v1/clusters/{cid}")).await;
                let nodes = c["nodes"].as_array()?;
                let moves = ops_of_type(&app, &cid, "move_node").await;
                assert!(
                    !moves.iter().any(|o| o["status"] == "failed"),
                    "after a crash at {point}: {moves:?}"
                );
                (h["nodes"] == 0
                    && nodes.len() == 2
                    && nodes.iter().all(|n| n["status"] == "active")
                    && c["status"] == "active"
                    && moves.iter().all(|o| o["status"] == "succeeded"))
                .then_some(())
            },
        )
        .await;
        let (s, h) = app.post(&format!("/v1/hosts/{drained}/uncordon"), json!({})).await;
        assert_eq!(s, 200, "{h}");
    }
    let c = wait_all_active(&app, &cid).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acked = load.stop().await;
    assert_no_lost_writes(&c, &pw, &acked).await;
    // Nothing left behind: one mariadbd per node, directories only for them.
    let ids: Vec<String> = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();
    let on_disk = |d: std::path::PathBuf| -> Vec<String> {
        std::fs::read_dir(d)
            .map(|r| r.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
            .unwrap_or_default()
    };
    eventually(Duration::from_secs(20), "no orphan left", || async {
        let mut dirs = on_disk(dir.join("nodes"));
        dirs.extend(on_disk(app.data_dir().join("nodes")));
        dirs.sort();
        let mut want = ids.clone();
        want.sort();
        (dirs == want && app.mariadbd_pids().len() + mariadbd_pids_under(&dir.join("nodes")).len() == 2).then_some(())
    })
    .await;
}
