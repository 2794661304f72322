//! `marina agent`: a host agent (issue 23). This slice joins: with a
//! one-time join token the agent makes its own key (ECDSA P-256, kept in
//! `<dir>/key.pem`, 0600, never sent), reports its name, zone, address and
//! capacity, and keeps the certificate the control plane's CA signs for it
//! (`cert.pem`) with the CA's own (`ca.pem`) and its host record
//! (`host.json`). The host is `cordoned` (it takes no node) until the agent
//! serves its API, the next slice. An agent that has joined says so and
//! does not join again.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// `marina agent` options.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The control plane's API, e.g. `https://cp:7300`.
    #[arg(long)]
    join: String,
    /// The one-time join token (`marina host join-token create`); prefer
    /// `MARINA_JOIN_TOKEN` or `--join-token-file`, which keep it off the
    /// command line.
    #[arg(long, env = "MARINA_JOIN_TOKEN", hide_env_values = true)]
    join_token: Option<String>,
    /// A file holding the join token.
    #[arg(long)]
    join_token_file: Option<PathBuf>,
    /// This host's zone (a token that names one wins).
    #[arg(long)]
    zone: Option<String>,
    /// The address nodes and endpoints of this host listen on [default: the
    /// one this host reaches the control plane from].
    #[arg(long)]
    address: Option<String>,
    /// Where the agent keeps its key, certificates and host record.
    #[arg(long, default_value = "./marina-agent")]
    dir: PathBuf,
}

/// Joins the control plane (once).
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let dir = if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        crate::working_dir()?.join(&args.dir)
    };
    let host_file = dir.join("host.json");
    if host_file.exists() {
        let host: Value = serde_json::from_slice(&std::fs::read(&host_file)?)?;
        println!(
            "this agent has joined as host {} (zone {}); serving the agent API comes next (issue 23)",
            host["id"].as_str().unwrap_or("?"),
            host["zone"].as_str().unwrap_or("?")
        );
        return Ok(());
    }
    let token = match (&args.join_token, &args.join_token_file) {
        (Some(t), _) => t.trim().to_string(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("reading {}", f.display()))?
            .trim()
            .to_string(),
        (None, None) => bail!("a join token is needed: MARINA_JOIN_TOKEN, --join-token-file or --join-token"),
    };
    marina_common::files::create_private_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = rcgen::KeyPair::generate().context("making the agent's key")?;
    write_private(&dir.join("key.pem"), key.serialize_pem().as_bytes())?;
    let base = args.join.trim_end_matches('/');
    let address = match args.address {
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
        "disk_bytes": marina_core::monitor::disk::total_bytes(&dir).unwrap_or(0),
        "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "version": env!("CARGO_PKG_VERSION"),
        "public_key": public_key,
    });
    let resp = marina_cli::client::http_builder()
        .build()?
        .post(format!("{base}/v1/hosts/join"))
        .json(&body)
        .send()
        .await
        .with_context(|| format!("reaching {base}"))?;
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "joining failed ({status}): {}",
            answer["error"]["message"].as_str().unwrap_or("no error message")
        );
    }
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
        "joined as host {} (zone {}, {}); it takes no node until the agent serves its API (issue 23)",
        answer["host"]["id"].as_str().unwrap_or("?"),
        answer["host"]["zone"].as_str().unwrap_or("?"),
        answer["host"]["status"].as_str().unwrap_or("?")
    );
    Ok(())
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
