//! `AgentClient` as the control plane's `NodeData` for a node on an agent
//! host: markers, copies and installs are calls to the agent's data routes
//! (`crate::data`); a copy between hosts is `copy_out` on the source's agent
//! relayed into `copy_in` on the target's. Backups, restores from the blob
//! store and SQL loads into nodes on agent hosts are not served yet: they
//! fail with an error that says so (the control plane takes backups from
//! and restores onto its own host meanwhile).

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

fn pipeline_err(e: RuntimeError) -> PipelineError {
    PipelineError::Io(e.to_string())
}

impl AgentClient {
    fn not_served(&self, what: &str) -> PipelineError {
        PipelineError::Io(format!(
            "{what} of nodes on agent hosts is not served yet (host {}): take backups and restores on the \
             control plane's host",
            self.host_id()
        ))
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
        _blobs: &dyn BlobStore,
        _key: &str,
        _target: &str,
        _scratch: &str,
    ) -> Result<(), PipelineError> {
        Err(self.not_served("restoring a backup"))
    }

    async fn backup(
        &self,
        _node: &str,
        _tool: BackupTool,
        _work: &str,
        _blobs: &dyn BlobStore,
        _key: &str,
        _pace: &Pace,
    ) -> Result<Produced, PipelineError> {
        Err(self.not_served("a backup"))
    }

    async fn load_sql(
        &self,
        _node: &str,
        _login: &Login<'_>,
        _extra: &[String],
        _blobs: &dyn BlobStore,
        _key: &str,
    ) -> Result<(), PipelineError> {
        Err(self.not_served("loading SQL"))
    }

    async fn replay_binlog(
        &self,
        _node: &str,
        _login: &Login<'_>,
        _blobs: &dyn BlobStore,
        _file: (&str, &str),
        _args: &[String],
        _work: &str,
    ) -> Result<(), PipelineError> {
        Err(self.not_served("replaying binlogs"))
    }
}
