//! The backup governor: a backup yields to the work on its host.
//!
//! On the two-vCPU machine Marina is measured on, a backup copying at full
//! speed cost the primary a third of its commits even with its tools on idle
//! CPU and I/O priority, and a copy limited to 20 MiB/s still cost a tenth:
//! whatever the tools do (read, checksum, compress, write) takes from the
//! same few CPUs and the same virtual disk the databases wait on. What helps
//! is doing less while the databases are busy. Rules:
//!
//! - Every `SAMPLE` the governor reads the host's busy CPU time
//!   (`/proc/stat`) and subtracts what the backup's own processes, Marina
//!   itself and the source node (which a dump keeps busy by design) used:
//!   the rest is the host's own work, in CPUs.
//! - While that is above `Pace::busy_cpus`, the backup's stream is read at
//!   most at `Pace::busy_rate` bytes per second (back-pressure through the
//!   pipe slows the tool and the compressor alike); otherwise at full speed.
//! - The latest sample decides; a backup starts limited until the first
//!   sample says the host is quiet (no burst at the start of a busy period).
//! - `busy_rate` 0 turns the limit off (the idle-group watch below stays).
//! - A busy host does not stretch a backup without end: with `Pace::stretch`
//!   `s` > 1, the first `1/s` of every `BURST_PERIOD` is unlimited (a burst
//!   at whatever speed the tools get), the rest paced. A backup under load
//!   then takes at most about `s` times as long as it would at full speed,
//!   and costs the nodes about `1/s` of what a full-speed backup costs them
//!   (whole backups of a busy database at the paced rate alone took 60 x
//!   their quiet time, and a nightly backup must end before the next one).
//! - The limit never falls below `redo_headroom` times the source's redo
//!   rate when `Pace::redo` can read it (read at the start, after the first
//!   sample, then every `REDO_EVERY`: each reading is a connection to the
//!   source, which is busy too). `mariadb-backup` (10.11) writes the
//!   redo it copies into the same stream as the data files, so a stream
//!   slower than the redo makes the copy fall behind until the source's
//!   circular log overwrites what was not copied yet and the backup fails
//!   ("Was only able to copy log …"): at 2 MiB/s under a write load that
//!   wrote 10 MB/s of redo, it did. When a reading fails the last known
//!   floor holds; with no rate known yet (after the first sample) a backup
//!   that streams redo is not limited at all: a slow backup is a cost, a
//!   failed one is not a backup.
//! - For the same reason, a backup whose tools run in the runtime's idle
//!   cgroup (`Pace::group`) leaves it for Marina's own group, for the rest of
//!   the backup, once its stream carried less than the source's redo rate at
//!   `BEHIND_FOR` redo readings in a row: the nodes left it too little CPU to
//!   keep up with the redo, and a copy that falls behind fails. (Without the
//!   idle group the tools competed with each node as an equal, and kept up.)

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use marina_runtime::cgroup::IdleGroup;

/// How often the host is sampled.
pub const SAMPLE: Duration = Duration::from_millis(200);

/// How often the source's redo is read once its rate is known. Each reading
/// is a new connection to the source (a busy replica whose semi-sync
/// acknowledgements the primary waits for); one a second instead of five
/// keeps the floor as current as the copier needs (it copies redo once a
/// second) and a rate over a second is steadier than one over 200 ms.
pub const REDO_EVERY: Duration = Duration::from_secs(1);

/// How many redo readings in a row (about one a second) a stream slower than
/// the redo takes a backup's tools out of the idle group. A tool starting up
/// streams little for a moment; a starved one stays behind.
pub const BEHIND_FOR: u32 = 5;

/// What `mariadb-backup` writes to its stream at once (xbstream's
/// `XB_STREAM_MIN_CHUNK_SIZE`): its redo copier waits for such a data chunk.
pub const STREAM_CHUNK: f64 = 10.0 * 1024.0 * 1024.0;

/// How many times the source's redo rate a paced physical stream carries.
/// The copier writes its redo between the data thread's chunks; at `k` x the
/// redo rate the redo waiting for its turn settles at `STREAM_CHUNK / (k -
/// 1)`. That stays under an eighth of the log with `k = 1 + 8 x STREAM_CHUNK
/// / capacity`, kept between 1.1 and 3 (3 when the capacity is unknown).
/// Less headroom would stream fewer bytes a second, but under sustained load
/// only `k - 1` of the stream is data: a backup of `D` bytes carries
/// `D / (k - 1)` of redo, twice as much at k = 1.16 as at 1.31 (and so is
/// the replay at restore).
pub fn redo_headroom(capacity: u64) -> f64 {
    if capacity == 0 {
        return 3.0;
    }
    (1.0 + 8.0 * STREAM_CHUNK / capacity as f64).clamp(1.1, 3.0)
}

/// The period of the unlimited bursts `Pace::stretch` allows.
pub const BURST_PERIOD: Duration = Duration::from_secs(2);

/// Whether a backup `elapsed` into its run is in an unlimited burst (the
/// first `1/stretch` of each `BURST_PERIOD`; never when `stretch` ≤ 1 is not
/// a finite number above 1 — 0 turns bursts off).
pub fn in_burst(elapsed: Duration, stretch: f64) -> bool {
    if !(stretch.is_finite() && stretch > 1.0) {
        return false;
    }
    let period = BURST_PERIOD.as_secs_f64();
    elapsed.as_secs_f64() % period < period / stretch
}

/// A reading of the source node's redo log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Redo {
    /// `Innodb_lsn_current`: bytes of redo written since the node was made.
    pub lsn: u64,
    /// `innodb_log_file_size`: the circular log's size.
    pub capacity: u64,
}

/// Reads the source's redo (`None` when it cannot be read now).
pub type RedoMeter = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<Redo>> + Send>> + Send + Sync>;

/// How hard a backup may work while its host is busy.
#[derive(Clone, Default)]
pub struct Pace {
    /// Bytes of the tool's stream per second while busy; 0: never limited.
    pub busy_rate: u64,
    /// The host is busy while its other processes use more CPUs than this
    /// (below 0: always busy).
    pub busy_cpus: f64,
    /// Processes whose CPU does not make the host busy (the source node),
    /// besides the backup's tools and Marina itself.
    pub exclude: Vec<u32>,
    /// The source's redo, for a tool that streams it (`mariadb-backup`).
    pub redo: Option<RedoMeter>,
    /// The cgroup the tool and the compressor join, when nodes have groups.
    pub group: Option<IdleGroup>,
    /// At most how many times its full-speed duration a busy host may
    /// stretch a backup (unlimited bursts, see the module; 0: no bursts).
    pub stretch: f64,
}

impl std::fmt::Debug for Pace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pace")
            .field("busy_rate", &self.busy_rate)
            .field("busy_cpus", &self.busy_cpus)
            .field("exclude", &self.exclude)
            .field("redo", &self.redo.is_some())
            .field("group", &self.group)
            .field("stretch", &self.stretch)
            .finish()
    }
}

impl Pace {
    /// No limit at all.
    pub fn unlimited() -> Self {
        Pace::default()
    }
}

/// The pure decision: the rate limit (bytes/s, 0 = none) after a sample of
/// the host's other work, in CPUs, and the floor the source's redo sets
/// (bytes/s: its rate times `redo_headroom`; infinite while unknown).
pub fn limit_for(pace: &Pace, others_cpus: f64, redo_floor: f64) -> u64 {
    if pace.busy_rate > 0 && others_cpus > pace.busy_cpus && redo_floor.is_finite() {
        pace.busy_rate.max(redo_floor.max(0.0) as u64)
    } else {
        0
    }
}

/// Busy CPU ticks of the whole host: user, nice, system, irq, softirq and
/// steal of the `cpu` line of `/proc/stat` (idle and iowait excluded).
pub fn host_busy_ticks(proc_stat: &str) -> Option<u64> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    if f.len() < 8 {
        return None;
    }
    Some(f[0] + f[1] + f[2] + f[5] + f[6] + f[7])
}

/// CPU ticks (user + system, all threads) of a process from its
/// `/proc/<pid>/stat` (its name may hold spaces and parentheses).
pub fn process_ticks(pid_stat: &str) -> Option<u64> {
    let rest = &pid_stat[pid_stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn ticks_of(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| process_ticks(&s))
        .sum()
}

/// Whether a stream is behind its source's redo: one reading's verdict
/// (`behind` readings so far) → the new count.
pub fn behind_after(behind: u32, stream_rate: f64, redo_rate: f64) -> u32 {
    if stream_rate < redo_rate { behind + 1 } else { 0 }
}

/// A running governor: `limit()` is the current limit (bytes/s, 0 = none).
pub struct Governor {
    limit: Arc<AtomicU64>,
    /// Bytes passed on so far (`pause_after`'s count).
    passed: Arc<AtomicU64>,
    /// Set when the tools left the idle group; the compressing thread
    /// follows them at its next `pause_after`.
    left_idle: Arc<AtomicBool>,
    compressor_left: AtomicBool,
    home: Option<marina_runtime::cgroup::GroupFiles>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Moves `tools` (pids) to Marina's own group (best effort).
fn leave_idle(group: &IdleGroup, tools: &[u32]) {
    let Some(home) = &group.home else { return };
    for pid in tools {
        let _ = home.add_process(*pid);
    }
    tracing::warn!(
        "a backup's stream fell behind its source's redo in the idle cgroup: its tools now compete with the nodes for CPU"
    );
}

impl Governor {
    /// Starts sampling for a backup whose tools are `tools`.
    pub fn start(pace: &Pace, tools: &[u32]) -> Governor {
        let limit = Arc::new(AtomicU64::new(pace.busy_rate));
        let passed = Arc::new(AtomicU64::new(0));
        let left_idle = Arc::new(AtomicBool::new(false));
        let mut governor = Governor {
            limit: limit.clone(),
            passed: passed.clone(),
            left_idle: left_idle.clone(),
            compressor_left: AtomicBool::new(false),
            home: pace.group.as_ref().and_then(|g| g.home.clone()),
            task: None,
        };
        // Off (`busy_rate` 0) means never limited; a backup in the idle
        // group is still watched, to leave it if it falls behind.
        if pace.busy_rate == 0 && pace.group.is_none() {
            return governor;
        }
        let tools = tools.to_vec();
        let mut own: Vec<u32> = tools.clone();
        own.push(std::process::id());
        own.extend(&pace.exclude);
        let (pace, shared) = (pace.clone(), limit);
        // SAFETY: sysconf has no memory-safety concerns.
        let per_sec = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
            hz if hz > 0 => hz as f64,
            _ => 100.0,
        };
        let task = tokio::spawn(async move {
            let sample = || {
                let host = std::fs::read_to_string("/proc/stat")
                    .ok()
                    .and_then(|s| host_busy_ticks(&s));
                (host, ticks_of(&own), std::time::Instant::now())
            };
            let redo = || async {
                match &pace.redo {
                    Some(meter) => meter().await.map(|r| (r, std::time::Instant::now())),
                    None => None,
                }
            };
            let mut redo_floor = if pace.redo.is_some() { f64::INFINITY } else { 0.0 };
            let (mut last, mut last_redo) = (sample(), redo().await);
            let (mut passed_then, mut behind) = (0u64, 0u32);
            let mut redo_read = std::time::Instant::now();
            let started = std::time::Instant::now();
            loop {
                tokio::time::sleep(SAMPLE).await;
                let now = sample();
                let due = !redo_floor.is_finite() || redo_read.elapsed() >= REDO_EVERY - SAMPLE / 2;
                let reading = if due {
                    redo_read = std::time::Instant::now();
                    redo().await
                } else {
                    None
                };
                if let (Some((r0, t0)), Some((r1, t1))) = (last_redo, reading) {
                    let secs = t1.duration_since(t0).as_secs_f64().max(0.001);
                    let rate = r1.lsn.saturating_sub(r0.lsn) as f64 / secs;
                    redo_floor = rate * redo_headroom(r1.capacity);
                    let passed_now = passed.load(Ordering::Relaxed);
                    let stream = passed_now.saturating_sub(passed_then) as f64 / secs;
                    passed_then = passed_now;
                    behind = behind_after(behind, stream, rate);
                    if behind == BEHIND_FOR
                        && let Some(group) = &pace.group
                    {
                        leave_idle(group, &tools);
                        left_idle.store(true, Ordering::Relaxed);
                    }
                }
                if reading.is_some() {
                    last_redo = reading;
                }
                if let (Some(h0), Some(h1)) = (last.0, now.0) {
                    let secs = now.2.duration_since(last.2).as_secs_f64().max(0.001);
                    let others =
                        (h1.saturating_sub(h0) as f64 - now.1.saturating_sub(last.1) as f64).max(0.0) / per_sec / secs;
                    let limit = if in_burst(started.elapsed(), pace.stretch) {
                        0
                    } else {
                        limit_for(&pace, others, redo_floor)
                    };
                    shared.store(limit, Ordering::Relaxed);
                }
                last = now;
            }
        });
        governor.task = Some(task);
        governor
    }

    /// The current limit in bytes per second (0 = none).
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// How long to wait after passing `n` bytes on. Called by the thread
    /// passing them (the compressor), which also follows the tools out of
    /// the idle group here.
    pub fn pause_after(&self, n: usize) -> Option<Duration> {
        self.passed.fetch_add(n as u64, Ordering::Relaxed);
        if self.left_idle.load(Ordering::Relaxed)
            && !self.compressor_left.swap(true, Ordering::Relaxed)
            && let Some(home) = &self.home
        {
            let _ = home.add_this_thread();
        }
        match self.limit() {
            0 => None,
            rate => Some(Duration::from_secs_f64(n as f64 / rate as f64)),
        }
    }
}

impl Drop for Governor {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_take_the_first_share_of_each_period() {
        let ms = Duration::from_millis;
        let cases = [
            (ms(0), 3.0, true),
            (ms(600), 3.0, true),
            (ms(700), 3.0, false),
            (ms(1999), 3.0, false),
            (ms(2100), 3.0, true),
            (ms(900), 2.0, true),
            (ms(1100), 2.0, false),
            (ms(0), 0.0, false),
            (ms(0), 1.0, false),
            (ms(0), f64::NAN, false),
            (ms(0), f64::INFINITY, false),
        ];
        for (elapsed, stretch, want) in cases {
            assert_eq!(in_burst(elapsed, stretch), want, "{elapsed:?} at stretch {stretch}");
        }
    }

    #[test]
    fn busy_hosts_get_the_busy_rate_and_quiet_ones_none() {
        let pace = Pace {
            busy_rate: 8 << 20,
            busy_cpus: 0.25,
            ..Pace::default()
        };
        assert_eq!(limit_for(&pace, 1.4, 0.0), 8 << 20);
        assert_eq!(limit_for(&pace, 0.26, 0.0), 8 << 20);
        assert_eq!(limit_for(&pace, 0.25, 0.0), 0);
        assert_eq!(limit_for(&pace, 0.0, 0.0), 0);
        assert_eq!(limit_for(&Pace::unlimited(), 2.0, 0.0), 0, "a zero rate turns it off");
        let always = Pace {
            busy_cpus: -1.0,
            ..pace
        };
        assert_eq!(limit_for(&always, 0.0, 0.0), 8 << 20);
    }

    #[test]
    fn a_busy_limit_stays_ahead_of_the_redo() {
        let pace = Pace {
            busy_rate: 2 << 20,
            busy_cpus: 0.25,
            ..Pace::default()
        };
        // 10 MB/s of redo (the write load that broke a 2 MiB/s backup).
        assert_eq!(limit_for(&pace, 1.5, 12e6), 12_000_000);
        assert_eq!(limit_for(&pace, 1.5, 100e3), 2 << 20, "light redo: the busy rate");
        assert_eq!(limit_for(&pace, 0.1, 12e6), 0, "a quiet host is never limited");
        assert_eq!(
            limit_for(&pace, 1.5, f64::INFINITY),
            0,
            "an unknown redo rate: not limited"
        );
        // The headroom keeps the redo waiting behind a data chunk under an
        // eighth of the log.
        let mib = 1 << 20;
        assert_eq!(redo_headroom(0), 3.0, "unknown capacity: the most");
        assert_eq!(redo_headroom(64 * mib), 2.25);
        assert_eq!(redo_headroom(256 * mib), 1.3125);
        assert_eq!(redo_headroom(1024 * mib), 1.1, "the least");
        for cap in [64 * mib, 256 * mib, 1024 * mib] {
            let waiting = STREAM_CHUNK / (redo_headroom(cap) - 1.0);
            assert!(waiting <= cap as f64 / 8.0 + 1.0, "{cap}: {waiting}");
        }
    }

    #[tokio::test]
    async fn a_stream_behind_the_redo_takes_its_tools_out_of_the_idle_group() {
        use marina_runtime::cgroup::GroupFiles;
        assert_eq!(behind_after(2, 0.5e6, 1e6), 3);
        assert_eq!(behind_after(2, 1e6, 1e6), 0, "keeping up resets the count");
        // Fake group files: the governor writes pids to `home`'s.
        let dir = tempfile::tempdir().unwrap();
        let group = |name: &str| {
            let files = |g: &str| GroupFiles {
                procs: dir.path().join(format!("{name}-{g}.procs")),
                threads: Some(dir.path().join(format!("{name}-{g}.tasks"))),
            };
            Some(IdleGroup {
                idle: files("idle"),
                home: Some(files("home")),
            })
        };
        // A source writing 1 MB of redo a second.
        let start = std::time::Instant::now();
        let meter: RedoMeter = Arc::new(move || {
            let lsn = start.elapsed().as_millis() as u64 * 1000;
            Box::pin(async move {
                Some(Redo {
                    lsn,
                    capacity: 256 << 20,
                })
            })
        });
        let pace = |name: &str| Pace {
            busy_rate: 1 << 20,
            busy_cpus: -1.0,
            exclude: vec![],
            redo: Some(meter.clone()),
            group: group(name),
            stretch: 0.0,
        };
        let fed = Governor::start(&pace("fed"), &[4242]);
        let starved = Governor::start(&pace("starved"), &[4343]);
        // One passes 4 MB/s on, the other nothing, for BEHIND_FOR + 1 readings.
        let until = std::time::Instant::now() + REDO_EVERY * (BEHIND_FOR + 1);
        while std::time::Instant::now() < until {
            fed.pause_after(400_000);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).ok();
        assert_eq!(read("starved-home.procs").as_deref(), Some("4343"));
        assert_eq!(read("fed-home.procs"), None, "a stream that keeps up stays idle");
        // The compressing thread follows at its next piece, once.
        assert_eq!(read("starved-home.tasks"), None);
        starved.pause_after(1);
        // SAFETY: gettid has no arguments and cannot fail.
        let tid = unsafe { libc::gettid() }.to_string();
        assert_eq!(read("starved-home.tasks"), Some(tid));
        fed.pause_after(1);
        assert_eq!(read("fed-home.tasks"), None);
    }

    #[tokio::test]
    async fn the_governor_reads_the_redo_rate() {
        // A source writing 1 MiB of redo per millisecond (~1 GiB/s): the
        // limit follows it up from the busy rate.
        let start = std::time::Instant::now();
        let capacity = 256 << 20;
        let meter: RedoMeter = Arc::new(move || {
            let lsn = start.elapsed().as_millis() as u64 * (1 << 20);
            Box::pin(async move { Some(Redo { lsn, capacity }) })
        });
        let pace = Pace {
            busy_rate: 1 << 20,
            busy_cpus: -1.0,
            exclude: vec![],
            redo: Some(meter),
            group: None,
            stretch: 0.0,
        };
        let g = Governor::start(&pace, &[]);
        assert_eq!(g.limit(), 1 << 20, "starts at the busy rate");
        tokio::time::sleep(SAMPLE * 2 + SAMPLE / 2).await;
        let limit = g.limit() as f64;
        let expected = redo_headroom(capacity) * 1000.0 * (1 << 20) as f64;
        assert!(
            (limit - expected).abs() < expected * 0.1,
            "limit {limit}, expected ~{expected}"
        );
        // A source whose redo cannot be read is not held back.
        let blind: RedoMeter = Arc::new(|| Box::pin(async { None }));
        let g = Governor::start(
            &Pace {
                redo: Some(blind),
                ..pace
            },
            &[],
        );
        tokio::time::sleep(SAMPLE * 2).await;
        assert_eq!(g.limit(), 0, "unknown redo: not limited");
    }

    #[tokio::test]
    async fn the_source_is_read_every_second_once_its_rate_is_known() {
        let reads = Arc::new(AtomicU64::new(0));
        let counted = reads.clone();
        let meter: RedoMeter = Arc::new(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                Some(Redo {
                    lsn: n * (1 << 20),
                    capacity: 256 << 20,
                })
            })
        });
        let pace = Pace {
            busy_rate: 1 << 20,
            busy_cpus: -1.0,
            exclude: vec![],
            redo: Some(meter),
            group: None,
            stretch: 0.0,
        };
        let _g = Governor::start(&pace, &[]);
        // Read at the start and after the first sample, then at about 1.2,
        // 2.2 and 3.2 s; every sample would be 18 readings by 3.5 s. The
        // bounds leave room for a loaded machine's late timers.
        tokio::time::sleep(Duration::from_millis(900)).await;
        let n = reads.load(Ordering::SeqCst);
        assert!(n <= 2, "not at every sample: {n} readings in 0.9 s");
        tokio::time::sleep(Duration::from_millis(2600)).await;
        let n = reads.load(Ordering::SeqCst);
        assert!((3..=5).contains(&n), "about once a second: {n} readings in 3.5 s");
    }

    #[test]
    fn proc_files_are_read_as_the_kernel_writes_them() {
        let stat = "cpu  2271270 52345 1319515 3208313 196866 0 159368 3157 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(host_busy_ticks(stat), Some(2271270 + 52345 + 1319515 + 159368 + 3157));
        assert_eq!(host_busy_ticks("cpu0 1 2 3\n"), None);
        let pid = "4242 (mariadb backup) (x) S 1 4242 4242 0 -1 4194560 2563 0 0 0 731 86 0 0 39 19 5 0 123";
        assert_eq!(process_ticks(pid), Some(731 + 86));
        assert_eq!(process_ticks("garbage"), None);
    }

    #[tokio::test]
    async fn a_governor_measures_this_host() {
        let pace = Pace {
            busy_rate: 1 << 20,
            busy_cpus: -1.0,
            ..Pace::default()
        };
        let g = Governor::start(&pace, &[]);
        assert_eq!(g.limit(), 1 << 20, "starts limited");
        assert_eq!(g.pause_after(1 << 19), Some(Duration::from_millis(500)));
        tokio::time::sleep(SAMPLE * 2).await;
        assert_eq!(g.limit(), 1 << 20, "always busy stays limited");
        let off = Governor::start(&Pace::unlimited(), &[]);
        assert_eq!(off.pause_after(1 << 30), None);
        let quiet = Governor::start(&Pace { busy_cpus: 1e9, ..pace }, &[]);
        tokio::time::sleep(SAMPLE * 2).await;
        assert_eq!(quiet.limit(), 0, "a quiet host lifts the limit");
    }
}
