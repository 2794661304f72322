//! The backup compressor: zstd inside Marina, on one idle-priority thread per
//! backup, at a level that follows the host's load.
//!
//! CPU is what a backup takes from the databases on a small host. On the
//! two-vCPU machine Marina is measured on, compressing an 800 MB physical
//! stream of sysbench data took 3.7 ms of CPU per MB at level 1 (2.4 x
//! smaller) and 1.8 ms at level -4 (1.3 x). A paced physical backup cannot
//! stream slower than its source writes redo (see `governor`), about 13 MB/s
//! under the benchmark's write load. Raw experiments under that load read
//! 0.98 x the primary's commits with such a stream going to `/dev/null` and
//! 0.90-0.92 x with `zstd -1` (on idle CPU) behind it. Rules:
//!
//! - The stream is cut into zstd frames of one level each: `QUIET_LEVEL`
//!   while the governor leaves the stream unlimited, `BUSY_LEVEL` while it
//!   limits it: a backup taken under load is larger, and the databases keep
//!   the CPU.
//! - The level changes only between frames, and a frame holds at least
//!   `MIN_FRAME` bytes of input, so a host that flaps between busy and quiet
//!   does not produce a frame per read.
//! - Concatenated frames are one valid zstd stream (`zstd -d` reads it
//!   whole); every frame carries its content checksum, as the zstd command
//!   writes them.
//! - The stream is paced here too: after each read, the governor's pause.
//! - Output leaves in pieces of `WRITE` bytes (the last one smaller): the
//!   thread downstream wakes a few times a second, not hundreds.

use std::io::{self, Read, Write};

use crate::governor::Governor;

/// The level while the host is quiet (the zstd command's `-1`).
pub const QUIET_LEVEL: i32 = 1;

/// The level while the governor limits the stream (`--fast=4`).
pub const BUSY_LEVEL: i32 = -4;

/// The least input a frame holds before the level may change.
pub const MIN_FRAME: u64 = 8 << 20;

/// How much is read (and compressed) at once.
const READ: usize = 1 << 20;

/// How much compressed output is passed on at once. The encoder alone writes
/// every 32 KiB: some 300 writes a second for a paced backup, each waking the
/// store's reader and a blocking-pool thread for its file write, on normal
/// priority. (Measured, Marina's runtime threads went from about 0.021 to
/// 0.018 CPU: a small saving, kept because it is free.)
pub(crate) const WRITE: usize = 1 << 20;

/// Whether the governor limits the stream now.
pub trait Load {
    /// `Some(pause)` after passing `n` bytes on while limited, else `None`.
    fn pause_after(&self, n: usize) -> Option<std::time::Duration>;
    /// Whether the stream is limited now.
    fn busy(&self) -> bool;
}

impl Load for Governor {
    fn pause_after(&self, n: usize) -> Option<std::time::Duration> {
        Governor::pause_after(self, n)
    }

    fn busy(&self) -> bool {
        self.limit() > 0
    }
}

/// The level for a frame starting now.
pub fn level_for(busy: bool) -> i32 {
    if busy { BUSY_LEVEL } else { QUIET_LEVEL }
}

/// What `compress` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Compressed {
    /// Bytes read from the input.
    pub bytes_in: u64,
    /// The level of each frame, in order.
    pub frames: Vec<i32>,
    /// The last `tail` bytes of the input (when asked for).
    pub tail: Vec<u8>,
}

/// Appends `bytes` to `kept`, holding on to (at least) the last `keep` bytes.
pub(crate) fn push_tail(kept: &mut Vec<u8>, bytes: &[u8], keep: usize) {
    kept.extend_from_slice(bytes);
    if kept.len() > 2 * keep {
        kept.drain(..kept.len() - keep);
    }
}

fn encoder<W: Write>(out: W, level: i32) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut enc = zstd::stream::write::Encoder::new(out, level)?;
    enc.include_checksum(true)?;
    Ok(enc)
}

/// Compresses everything `input` yields into `output` as zstd frames whose
/// level follows `load`, pausing as it says; keeps the last `tail` bytes of
/// the input.
pub fn compress(mut input: impl Read, output: impl Write, load: &dyn Load, tail: usize) -> io::Result<Compressed> {
    let mut done = Compressed::default();
    let mut level = level_for(load.busy());
    let mut enc = encoder(io::BufWriter::with_capacity(WRITE, output), level)?;
    done.frames.push(level);
    let mut in_frame = 0u64;
    let mut buf = vec![0u8; READ];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let want = level_for(load.busy());
        if want != level && in_frame >= MIN_FRAME {
            enc = encoder(enc.finish()?, want)?;
            level = want;
            done.frames.push(level);
            in_frame = 0;
        }
        enc.write_all(&buf[..n])?;
        in_frame += n as u64;
        done.bytes_in += n as u64;
        if tail > 0 {
            push_tail(&mut done.tail, &buf[..n], tail);
        }
        if let Some(pause) = load.pause_after(n) {
            std::thread::sleep(pause);
        }
    }
    enc.finish()?.flush()?;
    let keep = done.tail.len().saturating_sub(tail);
    done.tail.drain(..keep);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;

    /// Busy from `from` bytes to `to` bytes of input.
    struct Window {
        seen: AtomicU64,
        from: u64,
        to: u64,
        paused: AtomicBool,
    }

    impl Load for Window {
        fn pause_after(&self, n: usize) -> Option<Duration> {
            let seen = self.seen.fetch_add(n as u64, Ordering::Relaxed);
            if self.busy_at(seen) {
                self.paused.store(true, Ordering::Relaxed);
                Some(Duration::from_micros(1))
            } else {
                None
            }
        }

        fn busy(&self) -> bool {
            self.busy_at(self.seen.load(Ordering::Relaxed))
        }
    }

    impl Window {
        fn busy_at(&self, seen: u64) -> bool {
            (self.from..self.to).contains(&seen)
        }
    }

    /// Sysbench-like rows: compressible, not trivially.
    fn rows(bytes: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        while out.len() < bytes {
            for _ in 0..11 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                out.push(b'0' + (x % 10) as u8);
            }
            out.push(b'-');
        }
        out.truncate(bytes);
        out
    }

    fn zstd_d(compressed: &[u8]) -> Vec<u8> {
        zstd::stream::decode_all(compressed).unwrap()
    }

    #[test]
    fn the_level_follows_the_load_between_frames() {
        let data = rows(40 << 20);
        let load = Window {
            seen: AtomicU64::new(0),
            from: 10 << 20,
            to: 25 << 20,
            paused: AtomicBool::new(false),
        };
        let mut out = Vec::new();
        let done = compress(&data[..], &mut out, &load, 100).unwrap();
        assert_eq!(done.bytes_in, data.len() as u64);
        // Quiet for 10 MiB (frame 1 ends there: it holds MIN_FRAME), busy
        // until 25 MiB, then quiet again.
        assert_eq!(done.frames, vec![QUIET_LEVEL, BUSY_LEVEL, QUIET_LEVEL]);
        assert!(load.paused.load(Ordering::Relaxed), "busy input was paced");
        assert_eq!(done.tail, data[data.len() - 100..]);
        assert_eq!(zstd_d(&out), data, "the frames are one stream");
        assert!(out.len() < data.len(), "compressed: {}", out.len());
    }

    #[test]
    fn output_leaves_in_large_pieces() {
        /// Records the size of every write it gets.
        struct Pieces(Vec<usize>, Vec<u8>);
        impl Write for Pieces {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.push(b.len());
                self.1.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let data = rows(12 << 20);
        let quiet = Window {
            seen: AtomicU64::new(0),
            from: 0,
            to: 0,
            paused: AtomicBool::new(false),
        };
        let mut out = Pieces(Vec::new(), Vec::new());
        compress(&data[..], &mut out, &quiet, 0).unwrap();
        let (last, before) = out.0.split_last().unwrap();
        assert!(!before.is_empty() && *last > 0, "{:?}", out.0);
        assert!(before.iter().all(|&n| n >= WRITE / 2), "{:?}", out.0);
        assert_eq!(zstd_d(&out.1), data);
    }

    #[test]
    fn a_flapping_host_makes_no_tiny_frames() {
        struct Flap(AtomicBool);
        impl Load for Flap {
            fn pause_after(&self, _: usize) -> Option<Duration> {
                None
            }
            fn busy(&self) -> bool {
                !self.0.fetch_xor(true, Ordering::Relaxed)
            }
        }
        let data = rows(20 << 20);
        let mut out = Vec::new();
        let done = compress(&data[..], &mut out, &Flap(AtomicBool::new(false)), 0).unwrap();
        assert!(
            done.frames.len() <= (20 << 20) / MIN_FRAME as usize + 1,
            "{:?}",
            done.frames
        );
        assert!(done.tail.is_empty());
        assert_eq!(zstd_d(&out), data);
    }

    #[test]
    fn empty_input_is_one_empty_frame() {
        let load = Window {
            seen: AtomicU64::new(0),
            from: 0,
            to: 0,
            paused: AtomicBool::new(false),
        };
        let mut out = Vec::new();
        let done = compress(&[][..], &mut out, &load, 10).unwrap();
        assert_eq!(done.frames, vec![QUIET_LEVEL]);
        assert!(zstd_d(&out).is_empty());
    }

    #[test]
    fn a_broken_output_is_an_error() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let load = Window {
            seen: AtomicU64::new(0),
            from: 0,
            to: 0,
            paused: AtomicBool::new(false),
        };
        let data = rows(4 << 20);
        assert!(compress(&data[..], Broken, &load, 0).is_err());
    }
}
