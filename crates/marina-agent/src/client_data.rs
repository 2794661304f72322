//! `AgentClient` as the control plane's `NodeData` for a node on an agent
//! host: markers, copies and installs are calls to the agent's data routes
//! (`crate::data`); a copy between two agent hosts is offered by the
//! source's agent and pulled by the target's (`crate::peer`), a copy between
//! an agent host and the control plane's is relayed (`copy_out`, `copy_in`). Backups, restores and loads go
//! straight between the agent's host and the blob store, which must then be
//! an S3-compatible bucket (its configuration, credentials included, crosses
//! in the call over mutual TLS; a local directory is refused with an error
//! that says so).

use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use marina_backup::{BlobStore, Pace, PipelineError, Produced};
use marina_host::{BackupTool, DataStream, Login, NodeData};
use marina_runtime::RuntimeError;
use reqwest::Method;

use crate::AgentClient;
use crate::data::*;

/// How long a copy between nodes may take in all (a copy is paced by the
/// host's load; a stalled one is cut by the agent's own write timeout).
const COPY_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

fn login_body(login: &Login<'_>) -> LoginBody {
    LoginBody {
        user: login.user.into(),
        password: login.password.into(),
    }
}

fn pipeline_err(e: RuntimeError) -> PipelineError {
    PipelineError::Io(e.to_string())
}

impl AgentClient {
    /// How the agent reaches `blobs`: only an S3-compatible bucket can be
    /// reached from another host.
    fn remote_store(&self, blobs: &dyn BlobStore, what: &str) -> Result<marina_backup::S3Config, PipelineError> {
        blobs.remote().ok_or_else(|| {
            PipelineError::Io(format!(
                "{what} on agent host {} needs an S3-compatible backup store ([backups.s3]); the local one ({}) \
                 is the control plane's machine's only",
                self.host_id(),
                blobs.describe()
            ))
        })
    }

    /// A call that answers nothing but success, however long it takes.
    async fn run<B: serde::Serialize>(&self, path: &str, body: &B) -> Result<(), PipelineError> {
        let req = self.request(Method::POST, path).json(body).timeout(COPY_TIMEOUT);
        self.answer(path, req).await.map_err(pipeline_err).map(drop)
    }

    async fn gtid_of(&self, path: &str, req: reqwest::RequestBuilder) -> Result<String, PipelineError> {
        let resp = self
            .answer(path, req.timeout(COPY_TIMEOUT))
            .await
            .map_err(pipeline_err)?;
        let answer: GtidAnswer = resp
            .json()
            .await
            .map_err(|e| PipelineError::Io(format!("{path}: a bad answer: {e}")))?;
        Ok(answer.gtid)
    }
}

impl AgentClient {
    /// Streams a copy of `source` (on `from`'s host) into `target`'s
    /// `scratch` (on this agent's host) agent to agent: `from` offers it to
    /// this host under a one-time ticket, this agent pulls it. Returns the
    /// copy's GTID position.
    pub async fn pull_copy(
        &self,
        from: &AgentClient,
        source: &str,
        target: &str,
        scratch: &str,
        work: &str,
    ) -> Result<String, PipelineError> {
        let path = format!("/v1/nodes/{source}/copy-offer");
        let offer = crate::peer::CopyOfferBody {
            work: work.into(),
            peer_host: self.host_id().into(),
        };
        let ticket: crate::peer::CopyTicket = from
            .call_json(Method::POST, &path, Some(&offer), None)
            .await
            .map_err(pipeline_err)?;
        let path = format!("/v1/nodes/{target}/copy-pull");
        let pull = crate::peer::CopyPullBody {
            scratch: scratch.into(),
            source_host: from.host_id().into(),
            source_url: from.base().into(),
            ticket: ticket.ticket,
        };
        self.gtid_of(&path, self.request(Method::POST, &path).json(&pull)).await
    }
}

#[async_trait]
impl NodeData for AgentClient {
    async fn has_marker(&self, node: &str, marker: &str) -> Result<bool, PipelineError> {
        let path = format!("/v1/nodes/{node}/markers/{marker}");
        let a: MarkerAnswer = self
            .call_json::<(), _>(Method::GET, &path, None, None)
            .await
            .map_err(pipeline_err)?;
        Ok(a.present)
    }

    async fn copy_from(&self, source: &str, target: &str, scratch: &str, work: &str) -> Result<String, PipelineError> {
        let path = format!("/v1/nodes/{target}/copy-from");
        let body = CopyFromBody {
            source: source.into(),
            scratch: scratch.into(),
            work: work.into(),
        };
        self.gtid_of(&path, self.request(Method::POST, &path).json(&body)).await
    }

    async fn copy_out(&self, source: &str, work: &str) -> Result<DataStream, PipelineError> {
        let path = format!("/v1/nodes/{source}/copy-out");
        let body = CopyOutBody { work: work.into() };
        let req = self.request(Method::POST, &path).json(&body).timeout(COPY_TIMEOUT);
        let resp = self.answer(&path, req).await.map_err(pipeline_err)?;
        let stream = resp.bytes_stream().map_err(std::io::Error::other);
        Ok(Box::new(tokio_util::io::StreamReader::new(stream)))
    }

    async fn copy_in(&self, target: &str, scratch: &str, from: DataStream) -> Result<String, PipelineError> {
        let path = format!("/v1/nodes/{target}/copy-in/{scratch}");
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(from, 256 * 1024));
        let req = self
            .request(Method::PUT, &path)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        self.gtid_of(&path, req).await
    }

    async fn install_prepared(
        &self,
        target: &str,
        scratch: &str,
        marker: &str,
        text: &str,
    ) -> Result<(), PipelineError> {
        let path = format!("/v1/nodes/{target}/install");
        let body = InstallBody {
            scratch: scratch.into(),
            marker: marker.into(),
            text: text.into(),
        };
        let req = self.request(Method::POST, &path).json(&body).timeout(COPY_TIMEOUT);
        self.answer(&path, req).await.map_err(pipeline_err).map(drop)
    }

    async fn extract_backup(
        &self,
        blobs: &dyn BlobStore,
        key: &str,
        target: &str,
        scratch: &str,
    ) -> Result<(), PipelineError> {
        let body = ExtractBody {
            store: self.remote_store(blobs, "restoring a backup")?,
            key: key.into(),
            scratch: scratch.into(),
        };
        self.run(&format!("/v1/nodes/{target}/extract-backup"), &body).await
    }

    async fn backup(
        &self,
        node: &str,
        tool: BackupTool,
        work: &str,
        blobs: &dyn BlobStore,
        key: &str,
        pace: &Pace,
    ) -> Result<Produced, PipelineError> {
        let body = BackupBody {
            tool: match tool {
                BackupTool::Physical { from_replica: false } => "physical",
                BackupTool::Physical { from_replica: true } => "physical_replica",
                BackupTool::Logical => "logical",
            }
            .into(),
            work: work.into(),
            store: self.remote_store(blobs, "a backup")?,
            key: key.into(),
            pace: PaceBody {
                busy_rate: pace.busy_rate,
                busy_cpus: pace.busy_cpus,
                stretch: pace.stretch,
            },
        };
        let path = format!("/v1/nodes/{node}/backup");
        let req = self.request(Method::POST, &path).json(&body).timeout(COPY_TIMEOUT);
        let resp = self.answer(&path, req).await.map_err(pipeline_err)?;
        let p: ProducedAnswer = resp
            .json()
            .await
            .map_err(|e| PipelineError::Io(format!("{path}: a bad answer: {e}")))?;
        Ok(Produced {
            written: marina_backup::Written {
                size: p.size,
                sha256: p.sha256,
            },
            log: p.log,
            tail: p.tail,
        })
    }

    async fn load_sql(
        &self,
        node: &str,
        login: &Login<'_>,
        extra: &[String],
        blobs: &dyn BlobStore,
        key: &str,
    ) -> Result<(), PipelineError> {
        let body = LoadSqlBody {
            login: login_body(login),
            extra: extra.to_vec(),
            store: self.remote_store(blobs, "loading SQL")?,
            key: key.into(),
        };
        self.run(&format!("/v1/nodes/{node}/load-sql"), &body).await
    }

    async fn replay_binlog(
        &self,
        node: &str,
        login: &Login<'_>,
        blobs: &dyn BlobStore,
        (key, file): (&str, &str),
        args: &[String],
        work: &str,
    ) -> Result<(), PipelineError> {
        let body = ReplayBody {
            login: login_body(login),
            store: self.remote_store(blobs, "replaying binlogs")?,
            key: key.into(),
            file: file.into(),
            args: args.to_vec(),
            work: work.into(),
        };
        self.run(&format!("/v1/nodes/{node}/replay-binlog"), &body).await
    }
}
