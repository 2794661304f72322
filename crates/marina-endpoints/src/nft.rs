//! The kernel data path: DNAT rules in an nftables table owned by this Marina
//! instance (default name `marina`), replaced whole on every apply.

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use crate::{DataPath, EndpointError, Route};

/// nftables DNAT data path.
pub struct NftDataPath {
    /// Name of the `ip` table Marina owns.
    table: String,
    /// Serialises applies so two transactions never interleave.
    lock: tokio::sync::Mutex<()>,
}

impl NftDataPath {
    pub fn new(table: impl Into<String>) -> Self {
        NftDataPath {
            table: table.into(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The `nft -f` script that makes the table hold exactly `routes`: DNAT in a
    /// `nat` chain, and in a `filter` chain a guard that resets connections of
    /// an exclusive route whose backend is not the current one (established
    /// ones included: conntrack remembers the endpoint they were opened to) and
    /// every connection to a route without backends.
    pub fn render(&self, routes: &[Route]) -> String {
        let t = &self.table;
        // Create-then-delete makes the delete valid whether or not it existed.
        let mut s = format!("table ip {t}\ndelete table ip {t}\n");
        if routes.is_empty() {
            return s;
        }
        s.push_str(&format!(
            "table ip {t} {{\n  chain endpoints {{\n    type nat hook output priority -100; policy accept;\n"
        ));
        for r in routes {
            let (ip, port) = (r.listen.ip(), r.listen.port());
            match r.backends.as_slice() {
                [] => {}
                [one] => s.push_str(&format!("    ip daddr {ip} tcp dport {port} dnat to {one}\n")),
                many => {
                    let map: Vec<String> = many
                        .iter()
                        .enumerate()
                        .map(|(i, b)| format!("{i} : {} . {}", b.ip(), b.port()))
                        .collect();
                    s.push_str(&format!(
                        "    ip daddr {ip} tcp dport {port} dnat to numgen inc mod {} map {{ {} }}\n",
                        many.len(),
                        map.join(", ")
                    ));
                }
            }
        }
        s.push_str("  }\n  chain guard {\n    type filter hook output priority 0; policy accept;\n");
        // Admission: a new connection to an endpoint must come from an allowed
        // source (security groups); anything else is reset.
        for r in routes {
            let (ip, port) = (r.listen.ip(), r.listen.port());
            let m = format!("ct state new meta l4proto tcp ct original ip daddr {ip} ct original proto-dst {port}");
            let nets = ipnet::Ipv4Net::aggregate(&r.allowed);
            if nets.is_empty() || r.backends.is_empty() {
                s.push_str(&format!("    {m} reject with tcp reset\n"));
            } else {
                let set: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
                s.push_str(&format!(
                    "    {m} ip saddr != {{ {} }} reject with tcp reset\n",
                    set.join(", ")
                ));
            }
        }
        // Exclusivity: once an exclusive route leads somewhere, established
        // connections it no longer leads to are reset. A route without backends
        // (a failover or switchover in progress) only refuses new connections —
        // the admission rule above does that — and leaves established ones to
        // the operation, which fences or demotes the node they reach.
        for r in routes.iter().filter(|r| r.exclusive && !r.backends.is_empty()) {
            let (ip, port) = (r.listen.ip(), r.listen.port());
            let m = format!(
                "ct direction original meta l4proto tcp ct original ip daddr {ip} ct original proto-dst {port}"
            );
            for b in &r.backends {
                s.push_str(&format!("    {m} ip daddr {} tcp dport {} accept\n", b.ip(), b.port()));
            }
            s.push_str(&format!("    {m} reject with tcp reset\n"));
        }
        s.push_str("  }\n}\n");
        s
    }
}

#[async_trait]
impl DataPath for NftDataPath {
    fn kind(&self) -> &'static str {
        "kernel"
    }

    async fn apply(&self, routes: &[Route]) -> Result<(), EndpointError> {
        let _guard = self.lock.lock().await;
        let script = self.render(routes);
        let mut child = tokio::process::Command::new("nft")
            .arg("-f")
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| EndpointError::Nft(format!("cannot run nft: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .await
                .map_err(|e| EndpointError::Nft(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| EndpointError::Nft(e.to_string()))?;
        if !out.status.success() {
            return Err(EndpointError::Nft(format!(
                "{}\nscript:\n{script}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer (single backend, loopback), a balanced reader with overlapping
    /// allowed networks, and a writer with no backend and no allowed source.
    fn sample_routes() -> Vec<Route> {
        vec![
            Route {
                listen: "127.77.0.1:3306".parse().unwrap(),
                backends: vec!["127.0.0.1:41000".parse().unwrap()],
                exclusive: true,
                allowed: crate::loopback_only(),
            },
            Route {
                listen: "127.78.0.1:3306".parse().unwrap(),
                backends: vec!["127.0.0.1:41001".parse().unwrap(), "127.0.0.1:41002".parse().unwrap()],
                exclusive: false,
                allowed: vec!["127.0.0.2/32".parse().unwrap(), "127.0.0.0/30".parse().unwrap()],
            },
            Route {
                listen: "127.77.0.2:3306".parse().unwrap(),
                backends: vec![],
                exclusive: true,
                allowed: vec![],
            },
        ]
    }

    #[test]
    fn renders_single_and_balanced_routes() {
        let p = NftDataPath::new("marina_t");
        let s = p.render(&sample_routes());
        assert!(s.starts_with("table ip marina_t\ndelete table ip marina_t\n"));
        let admit = "ct state new meta l4proto tcp ct original ip daddr";
        assert!(s.contains(&format!(
            "{admit} 127.77.0.1 ct original proto-dst 3306 ip saddr != {{ 127.0.0.0/8 }} reject with tcp reset"
        )));
        // Overlapping networks are merged (nft refuses overlapping set elements).
        assert!(s.contains(&format!(
            "{admit} 127.78.0.1 ct original proto-dst 3306 ip saddr != {{ 127.0.0.0/30 }} reject"
        )));
        assert!(s.contains(&format!(
            "{admit} 127.77.0.2 ct original proto-dst 3306 reject with tcp reset"
        )));
        assert!(s.contains("ip daddr 127.77.0.1 tcp dport 3306 dnat to 127.0.0.1:41000\n"));
        assert!(s.contains(
            "ip daddr 127.78.0.1 tcp dport 3306 dnat to numgen inc mod 2 map { 0 : 127.0.0.1 . 41001, 1 : 127.0.0.1 . 41002 }"
        ));
        let guard = "ct direction original meta l4proto tcp ct original ip daddr 127.77.0.1 ct original proto-dst 3306";
        assert!(s.contains(&format!(
            "{guard} ip daddr 127.0.0.1 tcp dport 41000 accept\n    {guard} reject with tcp reset"
        )));
        assert!(
            !s.contains("ct direction original meta l4proto tcp ct original ip daddr 127.78.0.1"),
            "the reader is not exclusive"
        );
        // No backend: new connections are refused, established ones left alone.
        assert!(s.contains("ct state new meta l4proto tcp ct original ip daddr 127.77.0.2 ct original proto-dst 3306 reject with tcp reset"));
        assert!(!s.contains("ct direction original meta l4proto tcp ct original ip daddr 127.77.0.2"));
        assert!(!s.contains("127.77.0.2 tcp dport 3306 dnat"));
        assert_eq!(p.render(&[]), "table ip marina_t\ndelete table ip marina_t\n");
    }

    #[test]
    fn rendered_script_is_accepted_by_nft() {
        use std::io::Write;
        let p = NftDataPath::new("marina_render_check");
        let script = p.render(&sample_routes());
        // `-c`: parse and check against the kernel without applying.
        let mut child = std::process::Command::new("nft")
            .args(["-c", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("nft is installed (scripts/install-deps.sh)");
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
