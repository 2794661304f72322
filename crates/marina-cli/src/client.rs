//! HTTP client for the Marina API; error bodies become readable errors.

use anyhow::{Context, anyhow};
use serde_json::Value;

/// Default API address.
pub const URL_DEFAULT: &str = "http://127.0.0.1:7300";

/// An HTTP client builder with Marina's TLS setup: rustls with the `ring`
/// provider (installed as the process default on first use — reqwest is
/// built without a provider of its own, so the tree has one crypto backend).
pub fn http_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// `http_builder`, trusting only the PEM certificates in `ca_cert` when
/// given (a self-signed Marina's `marina.crt`, for instance).
pub fn http_builder_trusting(ca_cert: Option<&std::path::Path>) -> anyhow::Result<reqwest::ClientBuilder> {
    let mut builder = http_builder();
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("reading the CA certificate {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
        anyhow::ensure!(!certs.is_empty(), "{} holds no PEM certificate", path.display());
        builder = builder.tls_certs_only(certs);
    }
    Ok(builder)
}

/// A configured API client.
pub struct Client {
    /// Base URL without trailing slash.
    base: String,
    /// Bearer secret.
    token: String,
    /// Connection pool.
    http: reqwest::Client,
}

impl Client {
    /// Builds a client from `--url`/`MARINA_URL` and `MARINA_TOKEN`, falling back
    /// to `<data_dir>/admin-token`. With `ca_cert` (PEM), HTTPS servers are
    /// trusted only when their certificate chains to it (a self-signed
    /// Marina's `marina.crt`, for instance).
    pub fn from_env(
        url: Option<String>,
        data_dir: &std::path::Path,
        ca_cert: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let base = url
            .unwrap_or_else(|| URL_DEFAULT.into())
            .trim_end_matches('/')
            .to_string();
        let token = match std::env::var("MARINA_TOKEN") {
            Ok(t) if !t.is_empty() => t,
            _ => {
                let path = data_dir.join("admin-token");
                std::fs::read_to_string(&path)
                    .with_context(|| {
                        format!(
                            "no MARINA_TOKEN and cannot read {}: set MARINA_TOKEN to a token's secret, or pass \
                             --data-dir with the data dir `marina serve` runs with (its start-up line names it)",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_string()
            }
        };
        Ok(Client {
            base,
            token,
            http: http_builder_trusting(ca_cert)?
                .build()
                .context("building the HTTP client")?,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = match req.bearer_auth(&self.token).send().await {
            Ok(r) => r,
            Err(e) => return Err(anyhow!("{}", unreachable_hint(&self.base, &e))),
        };
        let status = resp.status();
        let request_id = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string();
        let body: Value = if status == reqwest::StatusCode::NO_CONTENT {
            Value::Null
        } else {
            resp.json().await.unwrap_or(Value::Null)
        };
        if status.is_success() {
            Ok(body)
        } else {
            let code = body["error"]["code"].as_str().unwrap_or("error");
            let msg = body["error"]["message"].as_str().unwrap_or("");
            let mut text = format!("{msg} ({code}, HTTP {})", status.as_u16());
            if let Some(hint) = status_hint(status.as_u16(), &request_id) {
                text.push_str(&format!("\n  → {hint}"));
            }
            Err(anyhow!(text))
        }
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.patch(format!("{}{path}", self.base)).json(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.delete(format!("{}{path}", self.base))).await
    }

    /// Every item of a list endpoint, following cursors.
    pub async fn list_all(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit=500&cursor={c}"),
                None => format!("{path}{sep}limit=500"),
            };
            let page = self.get(&url).await?;
            out.extend(page["data"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return Ok(out),
            }
        }
    }
}

/// What to do about a refused or failed connection to `base`.
fn unreachable_hint(base: &str, e: &reqwest::Error) -> String {
    let chain = {
        let mut parts = vec![e.to_string()];
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            parts.push(s.to_string());
            src = s.source();
        }
        parts.join(": ")
    };
    if e.is_connect() && chain.to_lowercase().contains("refused") {
        format!(
            "cannot reach Marina at {base}: nothing is listening there\n  → is `marina serve` running? \
             Start it with ./scripts/run.sh, or point --url (MARINA_URL) at the address its start-up line shows"
        )
    } else if chain.to_lowercase().contains("certificate") || chain.contains("tls") || chain.contains("TLS") {
        format!(
            "cannot reach Marina at {base}: {chain}\n  → for a self-signed Marina pass --ca-cert \
             <data-dir>/tls/marina.crt (MARINA_CA_CERT)"
        )
    } else if e.is_timeout() {
        format!("cannot reach Marina at {base}: timed out\n  → check the address and any firewall between you")
    } else {
        format!("cannot reach Marina at {base}: {chain}\n  → check --url (MARINA_URL)")
    }
}

/// What to do after an error status.
pub fn status_hint(status: u16, request_id: &str) -> Option<String> {
    Some(match status {
        401 => "the token was refused: MARINA_TOKEN (or <data-dir>/admin-token) must hold a live token's secret; \
                `marina token list` with a working token shows the live ones, and the host's root can write a new \
                admin token with `marina token create --bootstrap --data-dir <data-dir>`"
            .to_string(),
        403 => "this token's scopes do not allow it: use a token with the write or admin scope \
                (`marina token create NAME --scope read --scope write` with an admin token)"
            .to_string(),
        429 => "too many requests from this address: wait a second and retry".to_string(),
        500..=599 => {
            format!("a server-side failure: `marina serve`'s log has the details under request id {request_id}")
        }
        _ => return None,
    })
}

/// Whether Marina answers `GET {url}/healthz` (for `marina doctor`).
pub async fn health(url: &str) -> Result<(), String> {
    let http = http_builder().build().map_err(|e| e.to_string())?;
    match http
        .get(format!("{}/healthz", url.trim_end_matches('/')))
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("answered HTTP {}", r.status().as_u16())),
        Err(e) if e.is_connect() => Err("nothing is listening there".into()),
        Err(e) => Err(e.to_string()),
    }
}
