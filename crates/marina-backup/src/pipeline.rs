//! Pipelines between MariaDB's tools and a blob store.
//!
//! Taking a backup: `tool | Marina | store`. The tool writes into a pipe that
//! one thread of Marina's reads, compresses (`compress`: zstd at a level that
//! follows the host's load) and writes into a second pipe the store reads;
//! the thread also keeps the end of the uncompressed stream when the caller
//! needs it (a dump's closing GTID comment). The store hashes what it writes.
//! The object is only written, never committed, here: the caller commits
//! once the tool exited cleanly, so a tool that died half-way never leaves an
//! object that looks complete.
//!
//! The tool and the compressing thread run on idle CPU only, at nice 19 and
//! the lowest best-effort I/O priority, and the stream is paced by the
//! `governor` while the host is busy: a backup yields to the databases it
//! reads from, yet its stream stays fast enough for the redo log that
//! `mariadb-backup` copies into it alongside the data files. When nodes run
//! in cgroups, the tool also joins the runtime's idle group, and so does the
//! compressing thread where the host moves single threads (v1): outside the
//! nodes' groups, a thread's own idle policy does not make it yield to them.
//! (The governor takes them back out if that starves a copy of its redo.)
//!
//! Restoring: the object is read once to verify its checksum, then again into
//! `zstd -d | tool` (at normal priority: a restore is waited for).

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Stdio;

use marina_runtime::cgroup::IdleGroup;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use crate::compress::{compress, push_tail};
use crate::governor::{Governor, Pace};
use crate::{BlobError, BlobStore, Identity, Written};

/// How much of a tool's log (and of a relayed stream's end) is kept.
const TAIL: usize = 64 * 1024;

/// Pipeline failures.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {log}")]
    Tool {
        program: String,
        status: String,
        log: String,
    },
    #[error("checksum mismatch for {key}: expected sha256:{expected}, found sha256:{found}")]
    Checksum {
        key: String,
        expected: String,
        found: String,
    },
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("{0}")]
    Io(String),
}

/// What taking a backup produced.
#[derive(Debug, Clone)]
pub struct Produced {
    /// The compressed object as written (not yet committed).
    pub written: Written,
    /// The end of the tool's log (stderr).
    pub log: String,
    /// The end of the uncompressed stream (only when asked for).
    pub tail: String,
}

fn command(program: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("TZ", "UTC")
        .kill_on_drop(true);
    cmd
}

/// Runs a backup tool on idle CPU only (`SCHED_IDLE`, nice 19, in `group`
/// when there is one) and at the lowest best-effort I/O priority: it yields
/// to the databases on the host. Under sustained load it copies slowly;
/// nodes get a redo log large enough (see `marina_engine::cnf::redo_log_bytes`)
/// that it still keeps up with it (with an 8 MiB log it did not: writes
/// wrapped the log first).
fn low_priority<'a>(cmd: &'a mut Command, group: Option<&IdleGroup>) -> &'a mut Command {
    let procs = group.and_then(|g| CString::new(g.idle.procs.as_os_str().as_bytes()).ok());
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (open, write, close, scheduling) on the
    // child itself; the path was allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(procs) = &procs {
                // "0" moves the writing process. Best effort: a tool outside
                // the group still runs, at its idle policy.
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd >= 0 {
                    libc::write(fd, b"0".as_ptr().cast(), 1);
                    libc::close(fd);
                }
            }
            idle_priority();
            Ok(())
        })
    }
}

/// Puts the calling thread (Linux schedules threads, not processes) on idle
/// CPU, nice 19 and the lowest best-effort I/O priority. Best effort: a call
/// that fails leaves the thread as it was.
pub(crate) fn idle_priority() {
    // SAFETY: scheduling calls on the calling thread only (pid 0); no memory
    // is passed but a local struct; all are async-signal-safe.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        // ioprio_set(IOPRIO_WHO_PROCESS, self, IOPRIO_CLASS_BE << 13 | 7)
        libc::syscall(libc::SYS_ioprio_set, 1, 0, (2 << 13) | 7);
    }
}

/// Bytes a pipe between the tools holds (the kernel's default is 64 KiB).
const PIPE_BYTES: libc::c_int = 1 << 20;

/// Widens a pipe to `PIPE_BYTES`. With 64 KiB pipes, a relay through Marina
/// cost a logical backup 12% of its throughput here (every 64 KiB woke the
/// next process); with 1 MiB, nothing measurable. Best effort: a pipe that
/// cannot grow (an unprivileged limit) still works.
fn widen(pipe: &impl AsRawFd) {
    // SAFETY: fcntl on a descriptor this process owns; no memory is passed.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES);
    }
}

fn spawn(cmd: &mut Command, program: &Path) -> Result<Child, PipelineError> {
    cmd.spawn().map_err(|source| PipelineError::Spawn {
        program: program.display().to_string(),
        source,
    })
}

/// The last `TAIL` bytes as text.
fn tail_text(kept: &[u8]) -> String {
    String::from_utf8_lossy(&kept[kept.len().saturating_sub(TAIL)..]).into_owned()
}

/// The last 20 lines of a tool's log, for an error message.
fn last_lines(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Keeps the last `TAIL` bytes a reader yields.
async fn read_tail(mut r: impl AsyncRead + Unpin) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        push_tail(&mut kept, &buf[..n], TAIL);
    }
    tail_text(&kept)
}

/// Checks a finished process.
async fn finished(mut child: Child, program: &Path, log: String) -> Result<String, PipelineError> {
    let status = child
        .wait()
        .await
        .map_err(|e| PipelineError::Io(format!("waiting for {}: {e}", program.display())))?;
    if status.success() {
        Ok(log)
    } else {
        Err(PipelineError::Tool {
            program: program.display().to_string(),
            status: status.to_string(),
            log: last_lines(&log),
        })
    }
}

/// Runs `program args`, compresses its output (`compress`, on a thread of
/// Marina's at idle priority, paced by the governor `pace` starts) and writes
/// it to `store` under `key` (uncommitted); `keep_tail` keeps the end of the
/// uncompressed stream.
pub async fn produce(
    store: &dyn BlobStore,
    key: &str,
    program: &Path,
    args: &[String],
    keep_tail: bool,
    pace: &Pace,
) -> Result<Produced, PipelineError> {
    let io = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| PipelineError::Io(format!("{what}: {e}"))
    };
    let (tool_out, tool_in) = std::io::pipe().map_err(io("creating a pipe"))?;
    widen(&tool_out);
    let mut producer = spawn(
        low_priority(&mut command(program, args), pace.group.as_ref())
            .stdin(Stdio::null())
            .stdout(tool_in)
            .stderr(Stdio::piped()),
        program,
    )?;
    let log_task = tokio::spawn(read_tail(
        producer
            .stderr
            .take()
            .ok_or_else(|| PipelineError::Io("no stderr".into()))?,
    ));
    let (zipped_out, zipped_in) = std::io::pipe().map_err(io("creating a pipe"))?;
    widen(&zipped_out);
    let governor = Governor::start(pace, &producer.id().into_iter().collect::<Vec<_>>());
    let tail = if keep_tail { TAIL } else { 0 };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let group = pace.group.clone();
    std::thread::Builder::new()
        .name("backup-zstd".into())
        .spawn(move || {
            // Best effort, like `idle_priority`.
            if let Some(g) = &group {
                let _ = g.idle.add_this_thread();
            }
            idle_priority();
            let _ = done_tx.send(compress(tool_out, zipped_in, &governor, tail));
        })
        .map_err(io("starting the compressor"))?;
    let mut zipped =
        tokio::net::unix::pipe::Receiver::from_owned_fd(zipped_out.into()).map_err(io("reading the compressor"))?;
    // A store that fails stops the compressor (its pipe breaks) and so the
    // tool; its own error is the one to report (the child is killed on drop).
    let written = store.write(key, &mut zipped).await?;
    let compressed = done_rx
        .await
        .map_err(|_| PipelineError::Io("the compressor stopped".into()))?
        .map_err(io("compressing"))?;
    let log = log_task.await.unwrap_or_default();
    let log = finished(producer, program, log).await?;
    Ok(Produced {
        written,
        log,
        tail: tail_text(&compressed.tail),
    })
}

/// Reads `key` entirely and checks it against `sha256` (hex); returns its size.
pub async fn verify(store: &dyn BlobStore, key: &str, sha256: &str) -> Result<u64, PipelineError> {
    let mut r = store.read(key).await?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r
            .read(&mut buf)
            .await
            .map_err(|e| PipelineError::Io(format!("reading {key}: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let found = hex::encode(hasher.finalize());
    if found != sha256 {
        return Err(PipelineError::Checksum {
            key: key.into(),
            expected: sha256.into(),
            found,
        });
    }
    Ok(size)
}

/// Decompresses `key` into the standard input of `program args`, run as
/// `who`; returns the end of its output.
pub async fn consume(
    store: &dyn BlobStore,
    key: &str,
    program: &Path,
    args: &[String],
    who: &Identity,
) -> Result<String, PipelineError> {
    let zstd_bin = Path::new("zstd");
    let mut reader = store.read(key).await?;
    let mut zstd = spawn(
        command(zstd_bin, &["-q".into(), "-d".into(), "-c".into()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        zstd_bin,
    )?;
    let zout = zstd
        .stdout
        .take()
        .ok_or_else(|| PipelineError::Io("no zstd stdout".into()))?;
    widen(&zout);
    let zout: Stdio = zout
        .try_into()
        .map_err(|e| PipelineError::Io(format!("connecting zstd to {}: {e}", program.display())))?;
    let mut cmd = command(program, args);
    who.apply(&mut cmd);
    let mut consumer = spawn(cmd.stdin(zout).stdout(Stdio::piped()).stderr(Stdio::piped()), program)?;
    let out_task = tokio::spawn(read_tail(
        consumer
            .stdout
            .take()
            .ok_or_else(|| PipelineError::Io("no stdout".into()))?,
    ));
    let err_task = tokio::spawn(read_tail(
        consumer
            .stderr
            .take()
            .ok_or_else(|| PipelineError::Io("no stderr".into()))?,
    ));
    let zstd_log = tokio::spawn(read_tail(
        zstd.stderr
            .take()
            .ok_or_else(|| PipelineError::Io("no stderr".into()))?,
    ));
    let mut zin = zstd
        .stdin
        .take()
        .ok_or_else(|| PipelineError::Io("no zstd stdin".into()))?;
    widen(&zin);
    let fed = tokio::io::copy(&mut reader, &mut zin).await;
    drop(zin);
    let log = format!(
        "{}{}",
        out_task.await.unwrap_or_default(),
        err_task.await.unwrap_or_default()
    );
    finished(zstd, zstd_bin, zstd_log.await.unwrap_or_default()).await?;
    let log = finished(consumer, program, log).await?;
    fed.map_err(|e| PipelineError::Io(format!("feeding {key} to zstd: {e}")))?;
    Ok(log)
}

/// Streams `producer`'s output straight into `consumer`'s input (no copy
/// through Marina; the producer at low priority, but outside the idle group:
/// nothing here would take it back out if it starved), the consumer run as
/// `who`; returns both logs.
pub async fn pipe(
    producer: &Path,
    producer_args: &[String],
    consumer: &Path,
    consumer_args: &[String],
    who: &Identity,
) -> Result<(String, String), PipelineError> {
    let mut p = spawn(
        low_priority(&mut command(producer, producer_args), None)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        producer,
    )?;
    let out = p.stdout.take().ok_or_else(|| PipelineError::Io("no stdout".into()))?;
    widen(&out);
    let out: Stdio = out.try_into().map_err(|e| {
        PipelineError::Io(format!(
            "connecting {} to {}: {e}",
            producer.display(),
            consumer.display()
        ))
    })?;
    let mut cmd = command(consumer, consumer_args);
    who.apply(&mut cmd);
    let mut c = spawn(cmd.stdin(out).stdout(Stdio::piped()).stderr(Stdio::piped()), consumer)?;
    let p_log = tokio::spawn(read_tail(
        p.stderr.take().ok_or_else(|| PipelineError::Io("no stderr".into()))?,
    ));
    let c_out = tokio::spawn(read_tail(
        c.stdout.take().ok_or_else(|| PipelineError::Io("no stdout".into()))?,
    ));
    let c_err = tokio::spawn(read_tail(
        c.stderr.take().ok_or_else(|| PipelineError::Io("no stderr".into()))?,
    ));
    let p_log = finished(p, producer, p_log.await.unwrap_or_default()).await?;
    let c_log = format!("{}{}", c_out.await.unwrap_or_default(), c_err.await.unwrap_or_default());
    let c_log = finished(c, consumer, c_log).await?;
    Ok((p_log, c_log))
}

/// A byte stream between hosts (a copy's bytes on their way to another
/// host's tool).
pub type DataStream = Box<dyn AsyncRead + Send + Unpin>;

/// Runs `program args` at low priority (as `pipe` runs its producer) and
/// returns its output as a stream that ends with an error when the tool
/// fails (so whoever consumes it never takes a truncated copy for a whole
/// one). `on_end` runs once the tool is gone, however it ends (a work
/// directory's removal); dropping the stream kills the tool.
pub fn stream_out(
    program: &Path,
    args: &[String],
    on_end: Box<dyn FnOnce() + Send>,
) -> Result<DataStream, PipelineError> {
    let mut child = spawn(
        low_priority(&mut command(program, args), None)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        program,
    )?;
    let mut out = child
        .stdout
        .take()
        .ok_or_else(|| PipelineError::Io("no stdout".into()))?;
    widen(&out);
    let log = tokio::spawn(read_tail(
        child
            .stderr
            .take()
            .ok_or_else(|| PipelineError::Io("no stderr".into()))?,
    ));
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
    let program = program.to_path_buf();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 256 * 1024];
        let mut complete = true;
        loop {
            match out.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(Ok(bytes::Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                        // The reader went away: the tool is killed below.
                        complete = false;
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    complete = false;
                    break;
                }
            }
        }
        if !complete {
            let _ = child.start_kill();
        }
        let result = finished(child, &program, log.await.unwrap_or_default()).await;
        on_end();
        if let Err(e) = result
            && complete
        {
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Ok(Box::new(tokio_util::io::StreamReader::new(Box::pin(stream))))
}

/// Feeds `from` into the standard input of `program args`, run as `who`;
/// returns the end of its output. A stream that fails fails the call (the
/// tool is killed).
pub async fn stream_in(
    mut from: DataStream,
    program: &Path,
    args: &[String],
    who: &Identity,
) -> Result<String, PipelineError> {
    let mut cmd = command(program, args);
    who.apply(&mut cmd);
    let mut child = spawn(
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()),
        program,
    )?;
    let out_task = tokio::spawn(read_tail(
        child
            .stdout
            .take()
            .ok_or_else(|| PipelineError::Io("no stdout".into()))?,
    ));
    let err_task = tokio::spawn(read_tail(
        child
            .stderr
            .take()
            .ok_or_else(|| PipelineError::Io("no stderr".into()))?,
    ));
    let mut stdin = child.stdin.take().ok_or_else(|| PipelineError::Io("no stdin".into()))?;
    widen(&stdin);
    let fed = tokio::io::copy(&mut from, &mut stdin).await;
    drop(stdin);
    if let Err(e) = fed {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(PipelineError::Io(format!("streaming into {}: {e}", program.display())));
    }
    let log = format!(
        "{}{}",
        out_task.await.unwrap_or_default(),
        err_task.await.unwrap_or_default()
    );
    finished(child, program, log).await
}

/// Runs a tool to completion; returns the end of its output.
pub async fn run(program: &Path, args: &[String]) -> Result<String, PipelineError> {
    let out = command(program, args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| PipelineError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(log)
    } else {
        Err(PipelineError::Tool {
            program: program.display().to_string(),
            status: out.status.to_string(),
            log: last_lines(&log),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalBlobStore;

    fn sh(script: &str) -> (std::path::PathBuf, Vec<String>) {
        ("/bin/sh".into(), vec!["-c".into(), script.into()])
    }

    #[test]
    fn pipes_between_tools_are_widened() {
        let (r, _w) = std::io::pipe().unwrap();
        // SAFETY: fcntl on a descriptor this test owns.
        let before = unsafe { libc::fcntl(r.as_raw_fd(), libc::F_GETPIPE_SZ) };
        widen(&r);
        let after = unsafe { libc::fcntl(r.as_raw_fd(), libc::F_GETPIPE_SZ) };
        assert_eq!(before, 64 * 1024);
        assert_eq!(after, PIPE_BYTES);
    }

    #[tokio::test]
    async fn round_trip_through_zstd_with_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        let (p, a) = sh("seq 1 100000; echo 'GTID of the last change 0-1-9' >&2");
        let got = produce(&store, "b/data.zst", &p, &a, false, &Pace::unlimited())
            .await
            .unwrap();
        assert!(got.log.contains("0-1-9"));
        assert!(got.written.size > 0 && got.written.size < 588_895, "compressed");
        store.commit("b/data.zst").await.unwrap();
        assert_eq!(
            verify(&store, "b/data.zst", &got.written.sha256).await.unwrap(),
            got.written.size
        );
        let bad = verify(&store, "b/data.zst", "00").await.unwrap_err();
        assert!(matches!(bad, PipelineError::Checksum { .. }), "{bad}");
        let out_file = dir.path().join("out.txt");
        let (p, a) = sh(&format!("cat > {}", out_file.display()));
        consume(&store, "b/data.zst", &p, &a, &Identity::default())
            .await
            .unwrap();
        let back = std::fs::read_to_string(&out_file).unwrap();
        assert_eq!(back.lines().count(), 100_000);
        assert_eq!(back.lines().last(), Some("100000"));
    }

    #[tokio::test]
    async fn a_stream_between_hosts_carries_every_byte_and_a_failed_tool_fails_it() {
        let dir = tempfile::tempdir().unwrap();
        let ended = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let e = ended.clone();
        let (p, a) = sh("seq 1 200000");
        let out = stream_out(
            &p,
            &a,
            Box::new(move || e.store(true, std::sync::atomic::Ordering::SeqCst)),
        )
        .unwrap();
        let file = dir.path().join("in.txt");
        let (p, a) = sh(&format!("cat > {}", file.display()));
        stream_in(out, &p, &a, &Identity::default()).await.unwrap();
        let back = std::fs::read_to_string(&file).unwrap();
        assert_eq!(back.lines().count(), 200_000);
        assert_eq!(back.lines().last(), Some("200000"));
        for _ in 0..50 {
            if ended.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(ended.load(std::sync::atomic::Ordering::SeqCst), "on_end ran");

        // A tool that fails after writing: the stream ends with its error,
        // so the consumer's call fails instead of taking half a copy.
        let (p, a) = sh("seq 1 1000; echo broken >&2; exit 3");
        let out = stream_out(&p, &a, Box::new(|| {})).unwrap();
        let (p, a) = sh("cat > /dev/null");
        let err = stream_in(out, &p, &a, &Identity::default()).await.unwrap_err();
        assert!(err.to_string().contains("broken"), "{err}");
    }

    /// Removes the test's cgroups even when it fails.
    struct Groups(String);
    impl Drop for Groups {
        fn drop(&mut self) {
            marina_runtime::cgroup::remove_parent(&self.0);
        }
    }

    #[tokio::test]
    async fn the_tool_and_the_compressor_join_the_idle_group() {
        use marina_runtime::cgroup::Cgroups;
        let parent = format!("marina_test_idle_{}", std::process::id());
        let cg = Cgroups::detect(Path::new("/sys/fs/cgroup"), &parent);
        // SAFETY: geteuid has no arguments and cannot fail.
        if cg == Cgroups::None || unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root and cgroups");
            return;
        }
        let _cleanup = Groups(parent.clone());
        let g = cg.backup_group(marina_runtime::cgroup::Share::Idle).unwrap().unwrap();
        let pace = Pace {
            group: Some(g.clone()),
            ..Pace::unlimited()
        };
        // The tool prints its own groups, then (v1) those of its parent's
        // compressing thread, which starts just after the tool.
        let (p, a) = sh("cat /proc/self/cgroup; echo ==; for i in 1 2 3 4 5 6 7 8 9 10; do \
             for t in /proc/$PPID/task/*; do \
               [ \"$(cat $t/comm)\" = backup-zstd ] && grep -q backups $t/cgroup && cat $t/cgroup && exit 0; \
             done; sleep 0.2; done");
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        let got = produce(&store, "b/groups.zst", &p, &a, true, &pace).await.unwrap();
        let (tool, thread) = got.tail.split_once("==").unwrap();
        let wanted = format!("/{parent}/backups");
        assert!(tool.contains(&wanted), "the tool runs in {tool}");
        if g.idle.threads.is_some() {
            assert!(thread.contains(&wanted), "the compressor runs in {thread}");
        }
    }

    #[tokio::test]
    async fn the_end_of_a_relayed_stream_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        let (p, a) = sh("seq 1 200000; echo \"-- SET GLOBAL gtid_slave_pos='0-1-5';\"");
        let got = produce(&store, "b/dump.zst", &p, &a, true, &Pace::unlimited())
            .await
            .unwrap();
        assert!(
            got.tail.ends_with("gtid_slave_pos='0-1-5';\n"),
            "{}",
            &got.tail[got.tail.len() - 80..]
        );
        assert!(got.tail.len() <= TAIL);
    }

    #[tokio::test]
    async fn a_busy_host_paces_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        let (p, a) = sh("head -c 2097152 /dev/zero");
        let busy = Pace {
            busy_rate: 4 << 20,
            busy_cpus: -1.0,
            ..Pace::default()
        };
        let start = std::time::Instant::now();
        let got = produce(&store, "b/paced.zst", &p, &a, false, &busy).await.unwrap();
        assert!(got.written.size > 0);
        let paced = start.elapsed();
        assert!(
            paced >= std::time::Duration::from_millis(450),
            "2 MiB at 4 MiB/s took {paced:?}"
        );
        // Its frames (at the busy level) read back with the zstd command.
        store.commit("b/paced.zst").await.unwrap();
        let out_file = dir.path().join("paced.out");
        let (cat, cat_args) = sh(&format!("cat > {}", out_file.display()));
        consume(&store, "b/paced.zst", &cat, &cat_args, &Identity::default())
            .await
            .unwrap();
        assert_eq!(std::fs::metadata(&out_file).unwrap().len(), 2 << 20);
        let start = std::time::Instant::now();
        produce(&store, "b/free.zst", &p, &a, false, &Pace::unlimited())
            .await
            .unwrap();
        assert!(
            start.elapsed() < paced,
            "unpaced {:?} vs paced {paced:?}",
            start.elapsed()
        );
    }

    /// Takes 1 MiB, then fails like a full disk.
    struct FullStore;

    #[async_trait::async_trait]
    impl BlobStore for FullStore {
        fn describe(&self) -> String {
            "a full disk".into()
        }
        async fn write(&self, key: &str, reader: &mut (dyn AsyncRead + Unpin + Send)) -> Result<Written, BlobError> {
            let mut buf = vec![0u8; 1 << 20];
            reader.read_exact(&mut buf).await.unwrap();
            Err(BlobError::Io {
                context: format!("writing {key}"),
                source: std::io::Error::from_raw_os_error(libc::ENOSPC),
            })
        }
        async fn commit(&self, _: &str) -> Result<(), BlobError> {
            unreachable!()
        }
        async fn read(&self, key: &str) -> Result<Box<dyn AsyncRead + Unpin + Send>, BlobError> {
            Err(BlobError::NotFound(key.into()))
        }
        async fn exists(&self, _: &str) -> Result<bool, BlobError> {
            Ok(false)
        }
        async fn delete_prefix(&self, _: &str) -> Result<(), BlobError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failing_store_is_the_error_and_stops_the_tool() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // A tool that would stream forever.
        let (p, a) = sh(&format!("echo $$ > {}; exec cat /dev/urandom", pid_file.display()));
        let err = produce(&FullStore, "b/data.zst", &p, &a, false, &Pace::unlimited())
            .await
            .unwrap_err();
        assert!(matches!(err, PipelineError::Blob(_)), "{err}");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // Gone, or a zombie until the runtime reaps it.
        while std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z ")) {
            assert!(std::time::Instant::now() < deadline, "the tool still runs");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_failing_tool_is_an_error_and_nothing_is_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        for keep_tail in [false, true] {
            let (p, a) = sh("seq 1 1000; echo 'broken pipe somewhere' >&2; exit 3");
            let err = produce(&store, "b/data.zst", &p, &a, keep_tail, &Pace::unlimited())
                .await
                .unwrap_err();
            assert!(err.to_string().contains("broken pipe somewhere"), "{err}");
            assert!(!store.exists("b/data.zst").await.unwrap());
        }
        let (p, a) = sh("exit 0");
        assert!(matches!(
            produce(
                &store,
                "b/x.zst",
                Path::new("/nonexistent/tool"),
                &[],
                false,
                &Pace::unlimited()
            )
            .await,
            Err(PipelineError::Spawn { .. })
        ));
        run(&p, &a).await.unwrap();
        let (_, got) = pipe(
            &p,
            &["-c".into(), "echo piped; echo log >&2".into()],
            &p,
            &["-c".into(), "cat".into()],
            &Identity::default(),
        )
        .await
        .unwrap();
        assert_eq!(got, "piped\n");
        assert!(
            pipe(
                &p,
                &["-c".into(), "exit 4".into()],
                &p,
                &["-c".into(), "cat".into()],
                &Identity::default()
            )
            .await
            .is_err()
        );
        assert!(
            run(&p, &["-c".into(), "echo nope >&2; exit 1".into()])
                .await
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
    }
}
