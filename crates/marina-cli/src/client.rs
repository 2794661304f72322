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
                    .with_context(|| format!("no MARINA_TOKEN and cannot read {}", path.display()))?
                    .trim()
                    .to_string()
            }
        };
        let mut builder = http_builder();
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path).with_context(|| format!("reading the CA certificate {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
            anyhow::ensure!(!certs.is_empty(), "{} holds no PEM certificate", path.display());
            builder = builder.tls_certs_only(certs);
        }
        Ok(Client {
            base,
            token,
            http: builder.build().context("building the HTTP client")?,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach Marina at {}", self.base))?;
        let status = resp.status();
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
            Err(anyhow!("{msg} ({code}, HTTP {})", status.as_u16()))
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
