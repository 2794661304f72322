//! Cluster helpers shared by the benchmarks: connections, a timed single
//! writer, the write pause around an operation, waiting for a whole cluster.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use mysql_async::prelude::Queryable;
use serde_json::Value;

use crate::common::Api;

pub(crate) async fn conn(host: &str, port: u16, pw: &str) -> Option<mysql_async::Conn> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port)
        .user(Some("admin"))
        .pass(Some(pw.to_string()))
        .prefer_socket(false);
    tokio::time::timeout(Duration::from_secs(2), mysql_async::Conn::new(opts))
        .await
        .ok()?
        .ok()
}

/// One writer through the endpoint; returns ack times.
pub(crate) fn start_load(
    host: String,
    port: u16,
    pw: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Instant>> {
    tokio::spawn(async move {
        let mut acks = Vec::new();
        let mut c: Option<mysql_async::Conn> = None;
        let mut id: u64 = rand_start();
        while !stop.load(Ordering::Relaxed) {
            if c.is_none() {
                c = conn(&host, port, &pw).await;
                if c.is_none() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            }
            id += 1;
            let r = tokio::time::timeout(
                Duration::from_secs(5),
                c.as_mut()
                    .unwrap()
                    .exec_drop("INSERT INTO bench.t (id) VALUES (?)", (id,)),
            )
            .await;
            match r {
                Ok(Ok(())) => acks.push(Instant::now()),
                _ => c = None,
            }
        }
        acks
    })
}

/// Runs `request` (an operation) under a single-writer load; returns the
/// longest gap between acknowledged writes around it, in ms, and the operation.
pub(crate) async fn pause_during(
    api: &Api,
    host: &str,
    port: u16,
    pw: &str,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<(f64, serde_json::Value)> {
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(host.to_string(), port, pw.to_string(), stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let accepted = api.call(method, path, Some(body)).await?;
    let op = api
        .wait_op(accepted["operation"]["id"].as_str().unwrap_or_default())
        .await?;
    let ended = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let acks = load.await?;
    if op["status"] != "succeeded" {
        bail!("{path} failed: {op}");
    }
    let pause = acks
        .windows(2)
        .filter(|w| w[1] >= started && w[0] <= ended + Duration::from_millis(300))
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap_or_default();
    Ok((pause.as_secs_f64() * 1000.0, op))
}

fn rand_start() -> u64 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        % 1_000_000_000) as u64
        * 1000
}

pub(crate) fn primary(c: &Value) -> Value {
    c["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .find(|n| n["role"] == "primary")
        .unwrap_or(Value::Null)
}

pub(crate) async fn wait_all_active(api: &Api, id: &str) -> anyhow::Result<Value> {
    let start = Instant::now();
    loop {
        let c = api
            .call(reqwest::Method::GET, &format!("/v1/clusters/{id}"), None)
            .await?;
        let all = c["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().all(|n| n["status"] == "active"));
        if c["status"] == "active" && all {
            return Ok(c);
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("cluster did not become active again: {c}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An operation's steps with how long each took, for stderr.
pub(crate) fn step_times(op: &Value) -> String {
    let steps: Vec<String> = op["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let t = |k: &str| s[k].as_str().and_then(step_ms).unwrap_or_default();
            format!(
                "{} {} ms",
                s["name"].as_str().unwrap_or_default(),
                t("finished_at") - t("started_at")
            )
        })
        .collect();
    steps.join(", ")
}

/// Milliseconds of the day of an RFC 3339 UTC time (`…THH:MM:SS.mmmZ`).
pub(crate) fn step_ms(t: &str) -> Option<i64> {
    let time = t.split('T').nth(1)?.trim_end_matches('Z');
    let mut parts = time.split(':');
    let (h, m, s): (i64, i64, f64) = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    Some(h * 3_600_000 + m * 60_000 + (s * 1000.0) as i64)
}
