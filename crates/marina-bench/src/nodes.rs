//! `marina-bench nodes [--size-mib N] [--rounds N] [--trials N]`: node
//! lifecycle against raw tools, in one run on this machine.
//!
//! A 2-node `small` cluster is loaded with about `--size-mib` MiB (default
//! 1024) of sysbench data, then:
//! - add a replica: `POST …/nodes` → succeeded (the new node streamed from
//!   the replica, prepared, started and replicating), against raw
//!   `mariadb-backup --stream=mbstream | mbstream -x` + `mariadb-backup
//!   --prepare` from the same replica (best of `--rounds`; target ≤ 1.2 x);
//! - the write pause during a whole-cluster resize (`PATCH {"size_id"}`,
//!   alternating `medium` / `small`): the longest gap between acknowledged
//!   writes through the writer endpoint, against a plain switchover's pause
//!   in the same run (median of `--trials`; target: one switchover pause,
//!   median ≤ 300 ms).

use std::time::Instant;

use anyhow::bail;
use mysql_async::prelude::Queryable;
use serde_json::json;

use crate::backup::{Loaded, loaded_cluster, quoted, timed_sh};
use crate::common::{Bench, arg_value, spread};
use crate::ha::{conn, pause_during, wait_all_active};

/// Raw `mariadb-backup --stream | mbstream -x` + `--prepare` of the node in
/// `dir` into `scratch`; seconds.
async fn raw_clone(dir: &std::path::Path, scratch: &std::path::Path) -> anyhow::Result<f64> {
    let (work, out) = (scratch.join("work"), scratch.join("out"));
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(&work)?;
    std::fs::create_dir_all(&out)?;
    let backup = marina_engine::backup::physical_backup_args(&dir.join("mariadbd.sock"), &dir.join("data"), &work);
    let t = timed_sh(&format!(
        "mariadb-backup {} 2>/dev/null | mbstream {} && mariadb-backup {} >/dev/null 2>&1",
        quoted(&backup),
        quoted(&marina_engine::backup::extract_args(&out)),
        quoted(&marina_engine::backup::prepare_args(&out)),
    ))
    .await?;
    let _ = std::fs::remove_dir_all(scratch);
    Ok(t.as_secs_f64())
}

/// `POST …/nodes` until the operation succeeded (seconds; its steps' times go
/// to stderr), then the node is removed again.
async fn add_and_remove(api: &crate::common::Api, id: &str) -> anyhow::Result<f64> {
    let start = Instant::now();
    let added = api
        .call(
            reqwest::Method::POST,
            &format!("/v1/clusters/{id}/nodes"),
            Some(json!({})),
        )
        .await?;
    let op = api
        .wait_op(added["operation"]["id"].as_str().unwrap_or_default())
        .await?;
    if op["status"] != "succeeded" {
        bail!("adding a replica failed: {op}");
    }
    let took = start.elapsed().as_secs_f64();
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
    eprintln!("add_node steps: {}", steps.join(", "));
    let node = added["node"]["id"].as_str().unwrap_or_default();
    let removed = api
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/clusters/{id}/nodes/{node}"),
            None,
        )
        .await?;
    api.wait_op(removed["operation"]["id"].as_str().unwrap_or_default())
        .await?;
    wait_all_active(api, id).await?;
    Ok(took)
}

/// Milliseconds of the day of an RFC 3339 UTC time (`…THH:MM:SS.mmmZ`).
fn step_ms(t: &str) -> Option<i64> {
    let time = t.split('T').nth(1)?.trim_end_matches('Z');
    let mut parts = time.split(':');
    let (h, m, s): (i64, i64, f64) = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    Some(h * 3_600_000 + m * 60_000 + (s * 1000.0) as i64)
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let size_mib = arg_value(args, "--size-mib", 1024).max(16);
    let rounds = arg_value(args, "--rounds", 3).max(1);
    let trials = arg_value(args, "--trials", 4).max(1);
    let scratch = tempfile::Builder::new().prefix("marina-bench-nodes-").tempdir()?;
    let mut bench = Bench::start(scratch.path().join("marina"), |_| {}).await?;
    let app = bench.app.clone();
    let Loaded {
        id, pw, wh, replica_id, ..
    } = loaded_cluster(&bench, "grow", size_mib).await?;
    let api = &bench.api;
    println!(
        "# nodes benchmark: {size_mib} MiB of sysbench data, MariaDB {}, best of {rounds} / median of {trials}",
        app.runtime.default_version()
    );

    // Add a replica, against the raw stream + prepare from the same replica.
    let dir = app.runtime.node_dir(&replica_id);
    let raw = scratch.path().join("raw");
    let (mut raw_best, mut add_best) = (f64::MAX, f64::MAX);
    for round in 0..rounds {
        // Alternate which goes first, so neither always finds a warmer cache.
        for marina_turn in [round % 2 == 1, round % 2 == 0] {
            if marina_turn {
                add_best = add_best.min(add_and_remove(api, &id).await?);
            } else {
                raw_best = raw_best.min(raw_clone(&dir, &raw).await?);
            }
        }
    }
    println!("raw mariadb-backup stream | mbstream -x + --prepare: {raw_best:.1} s (1.00 x baseline)");
    println!(
        "add a replica (POST -> cloned, started, replicating): {add_best:.1} s ({:.2} x raw stream+prepare; target <= 1.2)",
        add_best / raw_best
    );

    // Write pauses: a plain switchover, then whole-cluster resizes.
    {
        let mut c = conn(&wh, 3306, &pw)
            .await
            .ok_or_else(|| anyhow::anyhow!("cannot connect to the writer endpoint"))?;
        c.query_drop("CREATE DATABASE bench").await?;
        c.query_drop("CREATE TABLE bench.t (id BIGINT PRIMARY KEY)").await?;
        c.disconnect().await?;
    }
    let switchover = format!("/v1/clusters/{id}/switchover");
    let mut base = Vec::new();
    for _ in 0..trials {
        let (p, _) = pause_during(api, &wh, 3306, &pw, reqwest::Method::POST, &switchover, json!({})).await?;
        base.push(p);
        wait_all_active(api, &id).await?;
    }
    let mut pauses = Vec::new();
    for i in 0..trials {
        let size = if i % 2 == 0 { "medium" } else { "small" };
        let (p, op) = pause_during(
            api,
            &wh,
            3306,
            &pw,
            reqwest::Method::PATCH,
            &format!("/v1/clusters/{id}"),
            json!({ "size_id": size }),
        )
        .await?;
        let switchovers = op["steps"]
            .as_array()
            .map(|s| s.iter().filter(|s| s["name"] == "switchover:promote").count())
            .unwrap_or(0);
        if switchovers != 1 {
            bail!("a resize made {switchovers} switchovers: {op}");
        }
        pauses.push(p);
        wait_all_active(api, &id).await?;
    }
    let (bmin, bmed, bmax) = spread(base);
    let (min, med, max) = spread(pauses);
    println!("switchover write pause min/median/max: {bmin:.0}/{bmed:.0}/{bmax:.0} ms (1.00 x baseline)");
    println!(
        "whole-cluster resize write pause min/median/max: {min:.0}/{med:.0}/{max:.0} ms ({:.2} x switchover; {:.2} x target median 300 ms)",
        med / bmed,
        med / 300.0
    );
    bench.stop().await;
    Ok(())
}
