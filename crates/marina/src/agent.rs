//! `marina agent`: a host agent (issue 23). It joins once: with a one-time
//! join token the agent makes its own key (ECDSA P-256, kept in
//! `<dir>/key.pem`, 0600, never sent), reports its name, zone, address,
//! capacity and API port, and keeps the certificate the control plane's CA
//! signs for it (`cert.pem`) with the CA's own (`ca.pem`) and its host
//! record (`host.json`). Then, and on every later start, it serves the
//! agent API (`marina_agent::server`) over mutual TLS: only the control
//! plane's certificate is accepted. Nodes live under `<dir>/nodes/` and
//! keep running when the agent stops; a restarted agent adopts them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// `marina agent` options.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The control plane's API, e.g. `https://cp:7300` (needed to join;
    /// an agent that has joined serves without it).
    #[arg(long)]
    join: Option<String>,
    /// The one-time join token (`marina host join-token create`); prefer
    /// `MARINA_JOIN_TOKEN` or `--join-token-file`, which keep it off the
    /// command line.
    #[arg(long, env = "MARINA_JOIN_TOKEN", hide_env_values = true)]
    join_token: Option<String>,
    /// A file holding the join token.
    #[arg(long)]
    join_token_file: Option<PathBuf>,
    /// Trust only this PEM certificate for the control plane's API when
    /// joining (its `marina.crt` when it serves a self-signed one).
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// This host's zone (a token that names one wins).
    #[arg(long)]
    zone: Option<String>,
    /// The address nodes and endpoints of this host listen on [default: the
    /// one this host reaches the control plane from].
    #[arg(long)]
    address: Option<String>,
    /// Where the agent keeps its key, certificates, host record and nodes.
    #[arg(long, default_value = "./marina-agent")]
    dir: PathBuf,
    /// Where the agent API listens (its port is reported when joining).
    #[arg(long, default_value = "0.0.0.0:7301")]
    listen: String,
    /// A directory of pre-initialised datadir templates to reuse.
    #[arg(long)]
    template_cache: Option<PathBuf>,
    /// The cgroup nodes' groups go under (empty: no CPU/memory limits).
    #[arg(long, default_value = "marina-agent")]
    cgroup_parent: String,
    /// Run every node as root instead of its cluster's uid.
    #[arg(long)]
    nodes_as_root: bool,
    /// `kernel`: program every cluster's endpoints on this host (nftables
    /// DNAT for clients of this and other machines; turns IPv4 forwarding
    /// on); `none`: serve no endpoints here.
    #[arg(long, default_value = "kernel", value_parser = ["kernel", "none"])]
    endpoints: String,
}

/// Joins the control plane (once), then serves the agent API.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    crate::init_logging();
    let dir = if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        crate::working_dir()?.join(&args.dir)
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let port = listener.local_addr()?.port();
    let host_file = dir.join("host.json");
    let host: Value = if host_file.exists() {
        let host: Value = serde_json::from_slice(&std::fs::read(&host_file)?)?;
        println!(
            "this agent has joined as host {} (zone {})",
            host["id"].as_str().unwrap_or("?"),
            host["zone"].as_str().unwrap_or("?")
        );
        if host["agent_port"].as_u64().is_some_and(|p| p != u64::from(port)) {
            tracing::warn!(joined = %host["agent_port"], listening = port, "the control plane calls this agent on the port it joined with");
        }
        host
    } else {
        join(&args, &dir, port).await?
    };
    serve(&args, &dir, &host, listener).await
}

/// Joins with the join token; returns the host record.
async fn join(args: &AgentArgs, dir: &Path, port: u16) -> anyhow::Result<Value> {
    let host_file = dir.join("host.json");
    let Some(join) = &args.join else {
        bail!("this agent has not joined yet: --join https://<control plane> and a join token are needed");
    };
    let token = match (&args.join_token, &args.join_token_file) {
        (Some(t), _) => t.trim().to_string(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("reading {}", f.display()))?
            .trim()
            .to_string(),
        (None, None) => bail!("a join token is needed: MARINA_JOIN_TOKEN, --join-token-file or --join-token"),
    };
    marina_common::files::create_private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = rcgen::KeyPair::generate().context("making the agent's key")?;
    write_private(&dir.join("key.pem"), key.serialize_pem().as_bytes())?;
    let base = join.trim_end_matches('/');
    let address = match args.address.clone() {
        Some(a) => a,
        None => local_address_towards(base)?,
    };
    let public_key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(key.public_key_raw())
    };
    let body = json!({
        "join_token": token,
        "name": marina_core::hosts::hostname(),
        "zone": args.zone,
        "address": address,
        "memory_bytes": (marina_core::placement::host_memory_gib() * (1u64 << 30) as f64) as u64,
        "disk_bytes": marina_core::monitor::disk::total_bytes(dir).unwrap_or(0),
        "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "version": env!("CARGO_PKG_VERSION"),
        "public_key": public_key,
        "agent_port": port,
    });
    let http = marina_cli::client::http_builder_trusting(args.ca_cert.as_deref())?.build()?;
    let answer = post_join(&http, base, &body).await?;
    let text = |k: &str| {
        answer[k]
            .as_str()
            .map(str::to_string)
            .context("the answer lacks a certificate")
    };
    write_private(&dir.join("cert.pem"), text("certificate_pem")?.as_bytes())?;
    write_private(&dir.join("ca.pem"), text("ca_pem")?.as_bytes())?;
    write_private(&host_file, serde_json::to_vec_pretty(&answer["host"])?.as_slice())?;
    println!(
        "joined as host {} (zone {}); it is active once the control plane hears from it",
        answer["host"]["id"].as_str().unwrap_or("?"),
        answer["host"]["zone"].as_str().unwrap_or("?"),
    );
    Ok(answer["host"].clone())
}

/// Serves the agent API until SIGTERM or Ctrl-C (nodes keep running).
async fn serve(args: &AgentArgs, dir: &Path, host: &Value, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    use std::sync::Arc;
    let host_id = host["id"].as_str().context("host.json names no host id")?.to_string();
    let read =
        |f: &str| std::fs::read_to_string(dir.join(f)).with_context(|| format!("reading {}", dir.join(f).display()));
    let identity = marina_agent::tls::Identity::from_pem(&read("cert.pem")?, &read("key.pem")?, &read("ca.pem")?)?;
    let tls = identity.agent_server_config()?;
    let callers = identity.caller_names()?;
    let admin: Arc<dyn marina_engine::NodeAdmin> = Arc::new(marina_engine::MysqlAdmin::default());
    let runtime = marina_runtime::LocalRuntime::new(
        dir,
        args.template_cache.clone(),
        admin.clone(),
        marina_runtime::START_TIMEOUT_DEFAULT,
    )?;
    runtime.check_node_users(args.nodes_as_root)?;
    let runtime = if args.cgroup_parent.is_empty() {
        runtime
    } else {
        runtime.with_cgroups(&args.cgroup_parent)
    };
    let runtime: Arc<dyn marina_runtime::NodeRuntime> = Arc::new(runtime);
    let data = Arc::new(marina_host::LocalNodeData::new(runtime.clone(), dir.join("tmp")));
    let state = Arc::new(marina_agent::server::AgentState {
        host_id: host_id.clone(),
        runtime,
        data,
        fence: marina_agent::fence::EpochFence::open(dir)?,
        fencing: Default::default(),
        admin,
        datapath: endpoints_datapath(&args.endpoints)?,
        endpoints_digest: Default::default(),
        control_plane: Default::default(),
        identity: Arc::new(identity),
        callers,
        tickets: Default::default(),
        probes: Default::default(),
        memory_bytes: (marina_core::placement::host_memory_gib() * (1u64 << 30) as f64) as u64,
        disk_bytes: marina_core::monitor::disk::total_bytes(dir).unwrap_or(0),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
    });
    println!(
        "agent of host {host_id} serving on https://{} (mutual TLS)",
        listener.local_addr()?
    );
    let limits = marina_api::transport::Limits {
        header_timeout: std::time::Duration::from_secs(10),
        write_timeout: std::time::Duration::from_secs(60),
        max_connections: 512,
        max_connections_per_source: 512,
    };
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        tracing::info!("agent stopping; nodes keep running and are adopted at the next start");
    };
    let watchdog = marina_agent::server::spawn_watchdog(state.clone());
    let prober = marina_agent::probes::spawn_prober(state.clone());
    let closing = state.clone();
    let shutdown = async move {
        shutdown.await;
        // Streams end at once: shutdown waits for open responses.
        closing.probes.close();
    };
    marina_api::transport::serve(
        marina_agent::server::router(state),
        listener,
        Some(tls),
        limits,
        shutdown,
    )
    .await?;
    watchdog.abort();
    prober.abort();
    Ok(())
}

/// How many times a join is tried while the control plane is unreachable
/// or busy (503, 429), waiting longer each time (0.5 s, 1 s, … 5 s).
const JOIN_ATTEMPTS: u32 = 12;

/// `POST /v1/hosts/join`, retried while the answer may change by itself;
/// a refusal (401, 400) ends it at once. The token is used only by a join
/// that succeeds, so a retry after a lost answer is refused as used: the
/// operator makes a new token.
async fn post_join(http: &reqwest::Client, base: &str, body: &Value) -> anyhow::Result<Value> {
    let mut wait = std::time::Duration::from_millis(500);
    for attempt in 1..=JOIN_ATTEMPTS {
        let last = attempt == JOIN_ATTEMPTS;
        match http.post(format!("{base}/v1/hosts/join")).json(body).send().await {
            Ok(resp) => {
                let status = resp.status();
                let answer: Value = resp.json().await.unwrap_or(Value::Null);
                if status.is_success() {
                    return Ok(answer);
                }
                let message = answer["error"]["message"]
                    .as_str()
                    .unwrap_or("no error message")
                    .to_string();
                let transient = status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
                if !transient || last {
                    bail!("joining failed ({status}): {message}");
                }
                tracing::warn!(%status, %message, "joining: the control plane is busy; trying again");
            }
            Err(e) if last => return Err(e).with_context(|| format!("reaching {base}")),
            Err(e) => tracing::warn!(error = %e, "joining: {base} unreachable; trying again"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_secs(5));
    }
    unreachable!("the last attempt returns")
}

/// A new file readable by its owner only from its first byte.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    marina_common::files::create_private(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// The local address this host reaches `url`'s host from (a UDP socket's
/// route lookup: nothing is sent).
fn local_address_towards(url: &str) -> anyhow::Result<String> {
    let authority = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or_default();
    let target = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:443")
    };
    let sock = std::net::UdpSocket::bind("0.0.0.0:0")?;
    sock.connect(&target)
        .with_context(|| format!("finding the route to {target}; pass --address"))?;
    Ok(sock.local_addr()?.ip().to_string())
}

/// The agent's endpoint data path: a forwarding nftables table (with IPv4
/// forwarding on, which a node elsewhere needs), or none.
fn endpoints_datapath(mode: &str) -> anyhow::Result<Option<std::sync::Arc<dyn marina_endpoints::DataPath>>> {
    if mode == "none" {
        return Ok(None);
    }
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .context("turning IPv4 forwarding on for endpoints (or run with --endpoints none)")?;
    Ok(Some(std::sync::Arc::new(
        marina_endpoints::NftDataPath::new("marina_agent").forwarding(),
    )))
}
