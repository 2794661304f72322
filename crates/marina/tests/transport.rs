//! The API transport (issue #4): HTTPS with a given or a persisted
//! self-signed certificate, the CLI's `--ca-cert`, plain HTTP refused on
//! non-loopback addresses without `--insecure-http`, and slow or idle clients
//! cut off by the header and body timeouts.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A `marina serve` started with `args`; killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data_dir: &std::path::Path, args: &[&str]) -> Result<Server, String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_marina"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--endpoints", "userspace"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("marina listening on ") {
            std::thread::spawn(move || for _ in lines {});
            let url = rest.split_whitespace().next().unwrap().to_string();
            return Ok(Server { child, url });
        }
    }
    let out = child.wait_with_output().unwrap();
    Err(String::from_utf8_lossy(&out.stderr).into_owned())
}

fn https_client(ca: Option<&std::path::Path>) -> reqwest::Client {
    let mut b = marina_cli::client::http_builder();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).unwrap();
        b = b.tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_persisted_self_signed_certificate_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data, &["--listen", "127.0.0.1:0", "--tls-self-signed"]).unwrap();
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    let cert = data.join("tls/marina.crt");
    let key = data.join("tls/marina.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    let client = https_client(Some(&cert));
    let resp = client
        .get(format!("{}/v1/tenants/current", server.url))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let versions: serde_json::Value = client
        .get(format!("{}/", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let href = versions["versions"][0]["links"][0]["href"].as_str().unwrap();
    assert!(href.starts_with("https://"), "{href}");
    // Without trusting the certificate, or in plain HTTP, nothing is served.
    assert!(
        https_client(None)
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .is_err()
    );
    let plain = server.url.replace("https://", "http://");
    assert!(https_client(None).get(format!("{plain}/healthz")).send().await.is_err());
    // The CLI trusts it with --ca-cert.
    let out = Command::new(env!("CARGO_BIN_EXE_marina"))
        .args(["token", "list", "-o", "json", "--url", &server.url, "--ca-cert"])
        .arg(&cert)
        .arg("--data-dir")
        .arg(&data)
        .env_remove("MARINA_TOKEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(env!("CARGO_BIN_EXE_marina"))
        .args(["token", "list", "--url", &server.url])
        .arg("--data-dir")
        .arg(&data)
        .env_remove("MARINA_TOKEN")
        .env_remove("MARINA_CA_CERT")
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown certificate is refused");
    // A restart keeps the certificate (clients pinned it).
    let before = std::fs::read(&cert).unwrap();
    drop(server);
    let again = serve(&data, &["--listen", "127.0.0.1:0", "--tls-self-signed"]).unwrap();
    assert_eq!(std::fs::read(&cert).unwrap(), before);
    let resp = https_client(Some(&cert))
        .get(format!("{}/healthz", again.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(again);
    // Given files work too, and a wrong pair is a clear start-up error.
    let given = serve(
        &data,
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    )
    .unwrap();
    assert!(given.url.starts_with("https://"));
    drop(given);
    let err = serve(
        &data,
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            cert.to_str().unwrap(),
        ],
    )
    .err()
    .expect("a certificate is not a key");
    assert!(err.contains("private key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_off_loopback_needs_insecure_http() {
    let dir = tempfile::tempdir().unwrap();
    let err = serve(dir.path(), &["--listen", "0.0.0.0:0"])
        .err()
        .expect("plain HTTP on all addresses is refused");
    assert!(
        err.contains("--insecure-http") && err.contains("--tls-self-signed"),
        "{err}"
    );
    assert!(
        !dir.path().join("marina.db").exists(),
        "refused before opening anything"
    );
    let server = serve(dir.path(), &["--listen", "0.0.0.0:0", "--insecure-http"]).unwrap();
    let port = server.url.rsplit(':').next().unwrap().to_string();
    let resp = https_client(None)
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// Reads until the peer closes (or `limit` passes); returns what came and when
/// the connection ended.
async fn read_until_closed(s: &mut tokio::net::TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), Some(start.elapsed())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), None),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_off() {
    let app = TestApp::start_configured(
        "userspace",
        "[limits]\nrequests_per_second = 10000.0\nburst = 10000.0\nheader_timeout_ms = 500\nbody_timeout_ms = 500\n",
    )
    .await;
    let addr = app.url.trim_start_matches("http://").to_string();
    // Headers that never finish: the connection is closed after the timeout.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    let closed = closed.expect("a client sending headers slowly is disconnected");
    assert!(closed >= Duration::from_millis(400), "{closed:?}");
    // A body that never finishes: 408 request_timeout in the contract's form.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/security-groups HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":",
        app.token
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(closed.is_some(), "the connection is closed after a 408");
    let (_, groups) = app.get("/v1/security-groups").await;
    assert_eq!(groups["data"], serde_json::json!([]), "nothing was created");
    // An idle keep-alive connection is closed too; a prompt client is served.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed.is_some(), "an idle keep-alive connection is closed");
}
