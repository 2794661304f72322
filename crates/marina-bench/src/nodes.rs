//! `marina-bench nodes [--size-mib N] [--rounds N] [--trials N]`: node
//! lifecycle against raw tools, in one run on this machine.
//!
//! A 2-node `small` cluster is loaded with about `--size-mib` MiB (default
//! 1024) of sysbench data, then:
//! - add a replica: `POST …/nodes` → succeeded (the new node streamed from
//!   the replica, prepared, started and replicating), against raw
//!   `mariadb-backup --stream=mbstream | mbstream -x` + `mariadb-backup
//!   --prepare` from the same replica (`--rounds` of each, alternating
//!   which goes first; target: median ≤ 1.2 x);
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
use crate::cluster::{conn, pause_during, wait_all_active};
use crate::common::{Bench, arg_value};
use crate::figures::{Figure, Target, record};

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
    eprintln!("add_node steps: {}", crate::cluster::step_times(&op));
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
        "# nodes benchmark: {size_mib} MiB of sysbench data, MariaDB {}, {rounds} rounds / {trials} trials",
        app.runtime.default_version()
    );

    // Add a replica, against the raw stream + prepare from the same replica.
    let dir = app.runtime.node_dir(&replica_id);
    let raw = scratch.path().join("raw");
    let (mut raw_runs, mut add_runs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so neither always finds a warmer cache.
        for marina_turn in [round % 2 == 1, round % 2 == 0] {
            if marina_turn {
                add_runs.push(add_and_remove(api, &id).await?);
            } else {
                raw_runs.push(raw_clone(&dir, &raw).await?);
            }
        }
    }
    let raw = record(Figure::new(
        "raw mariadb-backup stream | mbstream -x + --prepare",
        "s",
        raw_runs,
    ));
    record(
        Figure::new("add a replica (POST -> cloned, started, replicating)", "s", add_runs)
            .against(&raw)
            .target(Target::ratio_at_most(1.2)),
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
    let base = record(Figure::new("switchover write pause", "ms", base));
    record(
        Figure::new("whole-cluster resize write pause", "ms", pauses)
            .against(&base)
            .target(Target::median_at_most(300.0)),
    );
    bench.stop().await;
    Ok(())
}
