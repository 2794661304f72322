//! The README is tested as written. `the_readme_tour_runs_verbatim` takes the
//! commands of the README's tour from its fenced blocks (the one after
//! `<!-- tour:serve -->` starts Marina, each one after `<!-- tour -->` runs in
//! order in one shell) and runs them from a fresh working directory that
//! looks like the clone's (its `scripts` and `target` link to this
//! repository's), against the release binary `scripts/run.sh` builds, with
//! the default configuration: port 7300, table `marina`, `./marina-data`.
//! `every_relative_link_resolves` checks the README's and `docs/`'s links.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The fenced block following each line equal to `marker`, in order.
fn blocks_after(text: &str, marker: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim() != marker {
            continue;
        }
        let open = lines[i + 1..]
            .iter()
            .position(|l| l.starts_with("```"))
            .map(|p| i + 1 + p)
            .expect("a fenced block follows the marker");
        let close = lines[open + 1..]
            .iter()
            .position(|l| l.starts_with("```"))
            .map(|p| open + 1 + p)
            .expect("the block is closed");
        out.push(lines[open + 1..close].join("\n"));
    }
    out
}

/// A newcomer's environment: their PATH and HOME, nothing of the test
/// runner's (cargo's variables would make `scripts/run.sh`'s build think the
/// release binary is stale and rebuild it; MARINA_* would change defaults).
fn newcomer(cmd: &mut Command) -> &mut Command {
    cmd.env_clear();
    for var in ["PATH", "HOME", "LANG", "TERM", "USER"] {
        if let Ok(v) = std::env::var(var) {
            cmd.env(var, v);
        }
    }
    cmd
}

/// What the tour started, removed even when the test fails.
struct Tour {
    dir: tempfile::TempDir,
    server: Option<std::process::Child>,
}

impl Drop for Tour {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            // SAFETY: kill(2) on the process group this test created.
            unsafe {
                libc::kill(-(s.id() as i32), libc::SIGKILL);
            }
            let _ = s.wait();
        }
        for pid in common::mariadbd_pids_under(&self.dir.path().join("marina-data/nodes")) {
            // SAFETY: kill(2) on a mariadbd of this tour's data dir.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", "marina"])
            .stderr(Stdio::null())
            .status();
        marina_runtime::cgroup::remove_parent("marina");
    }
}

#[test]
fn the_readme_tour_runs_verbatim() {
    let root = repo();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let serve = blocks_after(&readme, "<!-- tour:serve -->");
    let tour = blocks_after(&readme, "<!-- tour -->");
    assert_eq!(serve.len(), 1, "one block starts Marina");
    assert!(tour.len() >= 2, "the tour has its command blocks: {tour:?}");
    let default_table = Command::new("nft")
        .args(["list", "table", "ip", "marina"])
        .output()
        .unwrap();
    assert!(
        !default_table.status.success() && !common::port_open(7300),
        "a Marina with the default configuration already runs on this host (port 7300 or nftables table \
         `marina`): the tour needs them"
    );
    assert!(
        root.join("target/release/marina").exists(),
        "scripts/test.sh builds the release binary first (cargo build --release -p marina)"
    );

    let dir = tempfile::Builder::new().prefix("marina-tour-").tempdir().unwrap();
    std::os::unix::fs::symlink(root.join("scripts"), dir.path().join("scripts")).unwrap();
    std::os::unix::fs::symlink(root.join("target"), dir.path().join("target")).unwrap();
    let mut t = Tour { dir, server: None };
    let log = t.dir.path().join("serve.log");
    let mut server = newcomer(Command::new("bash").args(["-euo", "pipefail", "-c", &serve[0]]))
        .current_dir(t.dir.path())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    t.server = Some(server);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.starts_with("marina listening on ") {
                let _ = tx.send(Ok(seen.clone()));
            }
        }
        let _ = tx.send(Err(seen));
    });
    let started = match rx.recv_timeout(Duration::from_secs(600)) {
        Ok(Ok(out)) => out,
        other => panic!(
            "`{}` did not start Marina: {other:?}\n{}",
            serve[0],
            std::fs::read_to_string(&log).unwrap_or_default()
        ),
    };
    let data = t.dir.path().canonicalize().unwrap().join("marina-data");
    assert!(
        started.contains("ok    mariadb"),
        "run.sh ran marina doctor first:\n{started}"
    );
    assert!(
        started.contains("marina listening on http://127.0.0.1:7300")
            && started.contains(&format!("data dir {}", data.display())),
        "{started}"
    );

    let script = tour.join("\n");
    let out = newcomer(Command::new("timeout").args(["600", "bash", "-euo", "pipefail", "-c", &script]))
        .current_dir(t.dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the README's tour failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server\n{}",
        out.status,
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    for expected in [
        "cluster orders active in",
        "count(*)",
        "switching over cluster orders: done in",
        "\"status\":\"creating\"",
        "cluster orders deleted in",
        "secret (shown once)",
    ] {
        assert!(
            stdout.contains(expected),
            "the tour's output lacks {expected:?}:\n{stdout}"
        );
    }
    assert!(
        common::mariadbd_pids_under(&data.join("nodes")).is_empty(),
        "the tour deletes what it creates"
    );
}

/// GitHub's anchor of a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> HashSet<String> {
    let mut fenced = false;
    let mut out = HashSet::new();
    for l in text.lines() {
        if l.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && l.starts_with('#') {
            out.insert(slug(l.trim_start_matches('#')));
        }
    }
    out
}

/// Markdown links `[label](target)` outside code.
fn links(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for l in text.lines() {
        if l.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = l;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let root = repo();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files(&root) {
        let text = std::fs::read_to_string(&file).unwrap();
        for target in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") || target.starts_with('/') {
                continue;
            }
            checked += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            let inside = resolved.canonicalize().is_ok_and(|r| r.starts_with(&root));
            let anchor_ok = anchor.is_empty()
                || resolved.extension().is_none_or(|x| x != "md")
                || std::fs::read_to_string(&resolved).is_ok_and(|t| anchors(&t).contains(anchor));
            if !inside || !anchor_ok {
                broken.push(format!("{}: {target}", file.strip_prefix(&root).unwrap().display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links that do not resolve inside the repository: {broken:#?}"
    );
    assert!(checked > 20, "the README and docs link their pages ({checked} links)");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.lines().count() <= 150,
        "the README is the front door ({} lines): move reference material into docs/",
        readme.lines().count()
    );
}

#[test]
fn slugs_and_links_are_read_like_github() {
    assert_eq!(slug(" Backups, restores and reseeds"), "backups-restores-and-reseeds");
    assert_eq!(slug(" The CLI's `--wait`"), "the-clis---wait");
    assert_eq!(
        links("see [a](b.md#c) and [d](http://e)\n```\n[x](y)\n```"),
        vec!["b.md#c", "http://e"]
    );
    assert_eq!(
        blocks_after("<!-- tour -->\ntext\n```sh\nls\npwd\n```\n", "<!-- tour -->"),
        vec!["ls\npwd"]
    );
}
