//! The fleet test rig (issue 23): hosts as Linux network namespaces.
//!
//! - A bridge lives in a namespace of its own; every member (the control
//!   plane `cp`, a `client`, hosts `h1`, `h2`, …) is a namespace with an
//!   `eth0` veth whose peer is a port of that bridge. Nothing changes in
//!   the root namespace but the namespaces themselves (each veth is made
//!   directly between two namespaces).
//! - Addresses come from the documentation range 198.51.100.0/24: `cp` .2,
//!   `client` .3, host *i* .(10 + i). Traffic never leaves the namespaces.
//! - Processes run in a member with `ip netns exec` (`command`); the rig
//!   knows them by namespace (`ip netns pids`), so a host is crashed by
//!   killing its pids, frozen with SIGSTOP, or cut off with nftables on
//!   its own `eth0` (all traffic, or one peer's).
//! - `in_ns` runs async code (an HTTP or MariaDB client) from a thread that
//!   joined a member's namespace: sockets are made where the thread is.
//! - On drop (a failed test included) every process in the rig's
//!   namespaces is killed and every namespace deleted (their veths go
//!   with them).

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// One namespace of the rig.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub netns: String,
    pub address: Ipv4Addr,
}

/// A bridge namespace and its members.
pub struct Rig {
    bridge: String,
    pub members: Vec<Member>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Rig {
    /// A rig with `cp`, `client` and `hosts` hosts (`h1`, `h2`, …).
    pub fn new(hosts: usize) -> Rig {
        let tag = format!("m{:06x}", rand::random::<u32>() & 0xff_ffff);
        let bridge = format!("{tag}-br");
        let mut rig = Rig {
            bridge: bridge.clone(),
            members: Vec::new(),
        };
        ip(&["netns", "add", &bridge]);
        ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &bridge, "link", "set", "br0", "up"]);
        let mut names = vec![("cp".to_string(), 2u8), ("client".to_string(), 3u8)];
        names.extend((1..=hosts).map(|i| (format!("h{i}"), 10 + i as u8)));
        for (i, (name, last)) in names.into_iter().enumerate() {
            let netns = format!("{tag}-{name}");
            ip(&["netns", "add", &netns]);
            // Registered before it is wired: a failure below still removes it.
            rig.members.push(Member {
                name: name.clone(),
                netns: netns.clone(),
                address: Ipv4Addr::new(198, 51, 100, last),
            });
            let port = format!("p{i}");
            ip(&[
                "-n", &netns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns", &bridge,
            ]);
            ip(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("198.51.100.{last}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &netns, "link", "set", "eth0", "up"]);
            ip(&["-n", &netns, "link", "set", "lo", "up"]);
            ip(&["-n", &bridge, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &bridge, "link", "set", &port, "up"]);
        }
        rig
    }

    pub fn member(&self, name: &str) -> &Member {
        self.members
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    /// `program` to run inside `member`.
    pub fn command(&self, member: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.member(member).netns, program]);
        c
    }

    /// Every process in `member`'s namespace.
    pub fn pids(&self, member: &str) -> Vec<i32> {
        pids_in(&self.member(member).netns)
    }

    /// Sends `sig` to every process of `member` (SIGKILL: the host dies).
    pub fn signal(&self, member: &str, sig: i32) {
        for pid in self.pids(member) {
            // SAFETY: kill(2) on a process in a namespace this rig made.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    /// Drops `member`'s traffic on its `eth0`: all of it, or only to and
    /// from `peer`.
    pub fn cut(&self, member: &str, peer: Option<&str>) {
        let m = self.member(member);
        let only = peer
            .map(|p| format!("ip daddr {} ", self.member(p).address))
            .unwrap_or_default();
        let only_in = peer
            .map(|p| format!("ip saddr {} ", self.member(p).address))
            .unwrap_or_default();
        let rules = format!(
            "table inet rig_cut {{\n chain o {{ type filter hook output priority 0; oifname \"eth0\" {only}drop; }}\n \
             chain i {{ type filter hook input priority 0; iifname \"eth0\" {only_in}drop; }}\n}}\n"
        );
        let out = Command::new("ip")
            .args(["netns", "exec", &m.netns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(rules.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Routes `member`'s traffic for `net` through `via`'s address (a
    /// client reaching endpoint addresses through one host); replaces an
    /// earlier route for `net`.
    pub fn route(&self, member: &str, net: &str, via: &str) {
        let via = self.member(via).address.to_string();
        ip(&["-n", &self.member(member).netns, "route", "replace", net, "via", &via]);
    }

    /// Undoes `cut`.
    pub fn heal(&self, member: &str) {
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.member(member).netns,
                "nft",
                "delete",
                "table",
                "inet",
                "rig_cut",
            ])
            .stderr(Stdio::null())
            .status();
    }

    /// Runs `f` on a thread inside `member`'s namespace (its own runtime).
    pub fn in_ns<T, F, Fut>(&self, member: &str, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T>,
    {
        let path = format!("/var/run/netns/{}", self.member(member).netns);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap();
            use std::os::fd::AsRawFd;
            // SAFETY: setns(2) on this thread with a descriptor it owns.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f())
        })
        .join()
        .expect("the namespace thread panicked")
    }
}

fn pids_in(netns: &str) -> Vec<i32> {
    let out = Command::new("ip").args(["netns", "pids", netns]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

impl Drop for Rig {
    fn drop(&mut self) {
        // Again until none is left: an agent killed in the first pass may
        // have started a node just before.
        for _ in 0..20 {
            let pids: Vec<i32> = self.members.iter().flat_map(|m| pids_in(&m.netns)).collect();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                // SAFETY: kill(2) on a process in a namespace this rig made.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        for m in &self.members {
            let _ = Command::new("ip").args(["netns", "del", &m.netns]).status();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.bridge]).status();
    }
}
