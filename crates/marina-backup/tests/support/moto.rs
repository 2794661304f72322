//! A moto S3-compatible server for tests (installed by
//! `scripts/install-deps.sh --test`; `MARINA_TEST_MOTO` points elsewhere):
//! started on a free loopback port with one bucket, killed on drop. Shared by
//! the backup store's tests and Marina's integration tests (`#[path]`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct S3Server {
    child: Child,
    pub endpoint: String,
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

impl S3Server {
    pub async fn start(bucket: &str) -> S3Server {
        let bin = std::env::var("MARINA_TEST_MOTO").unwrap_or_else(|_| "/opt/marina-test/moto/bin/moto_server".into());
        assert!(
            std::path::Path::new(&bin).exists(),
            "{bin} is missing: run scripts/install-deps.sh --test (or set MARINA_TEST_MOTO)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "moto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let resp = http()
            .put(format!("{}/{bucket}", server.endpoint))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "creating bucket: {}", resp.status());
        server
    }

    /// The keys in a bucket.
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let text = http()
            .get(format!("{}/{bucket}?list-type=2", self.endpoint))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(String::from)
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
