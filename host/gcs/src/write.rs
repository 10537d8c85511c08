//! Writes: resumable uploads sent in fixed chunks (one on the wire while the
//! next fills, so memory stays at two chunks), small objects in one request,
//! and staged objects that wait under a hidden name until published with a
//! server-side copy.

use std::io::{self, Write};
use std::sync::Arc;

use bytes::Bytes;
use reqwest::StatusCode;
use serde::Deserialize;
use sluice_codec::Error;
use sluice_codec::store::{ObjectWriter, Staged};
use tokio::task::JoinHandle;

use crate::client;
use crate::{Inner, STAGING_DIR, block_on, runtime};

/// Bytes a resumable upload sends at a time: a multiple of 256 KiB, as GCS
/// requires of every chunk but the last.
const CHUNK: usize = 8 << 20;
/// The content type of a JSON request body.
const JSON: &str = "application/json; charset=UTF-8";

/// Upload `data` as the whole of `name`, replacing it.
pub(crate) async fn upload_whole(inner: &Inner, name: &str, data: Bytes) -> Result<(), Error> {
    let what = inner.describe(name);
    let url = inner.client.upload_url(&inner.url.bucket);
    let response = inner
        .client
        .send(&what, || {
            inner
                .client
                .http
                .post(&url)
                .query(&[("uploadType", "media"), ("name", name)])
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(data.clone())
        })
        .await?;
    client::ok(response, &what).await.map(|_| ())
}

/// Delete `name`; a missing object is not an error.
pub(crate) async fn delete(inner: &Inner, name: &str) -> Result<(), Error> {
    let what = inner.describe(name);
    let url = inner.client.object_url(&inner.url.bucket, name);
    let response = inner
        .client
        .send(&what, || inner.client.http.delete(&url))
        .await?;
    if response.status() == StatusCode::NOT_FOUND {
        return Ok(());
    }
    client::ok(response, &what).await.map(|_| ())
}

/// A rewrite's progress: large objects take several calls.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rewrite {
    #[serde(default)]
    done: bool,
    #[serde(default)]
    rewrite_token: Option<String>,
}

/// Copy `src` to `dst` in the bucket, server-side, however large.
pub(crate) async fn copy(inner: &Inner, src: &str, dst: &str) -> Result<(), Error> {
    let what = format!("{} → {}", inner.describe(src), inner.describe(dst));
    let bucket = &inner.url.bucket;
    let url = format!(
        "{}/rewriteTo/b/{}/o/{}",
        inner.client.object_url(bucket, src),
        client::segment(bucket),
        client::segment(dst),
    );
    let mut token: Option<String> = None;
    loop {
        let response = inner
            .client
            .send(&what, || {
                let request = inner
                    .client
                    .http
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, JSON)
                    .body("{}");
                match &token {
                    Some(token) => request.query(&[("rewriteToken", token)]),
                    None => request,
                }
            })
            .await?;
        let step: Rewrite = client::json(response, &what).await?;
        if step.done {
            return Ok(());
        }
        token = Some(step.rewrite_token.ok_or_else(|| {
            Error::internal(format!(
                "{what}: GCS said not done but gave no rewrite token"
            ))
        })?);
    }
}

/// Publish the staged object `staged` at `dst`: copy, then delete the
/// staged one. With `orphan`, a staged object already gone is fine when
/// `dst` exists (an earlier process published it and died before saying
/// so).
pub(crate) async fn publish(
    inner: &Inner,
    staged: &str,
    dst: &str,
    orphan: bool,
) -> Result<(), Error> {
    match copy(inner, staged, dst).await {
        Ok(()) => delete(inner, staged).await,
        Err(e) if orphan && e.kind == sluice_codec::ErrorKind::Config => {
            let what = inner.describe(dst);
            let url = inner.client.object_url(&inner.url.bucket, dst);
            let response = inner
                .client
                .send(&what, || inner.client.http.get(&url))
                .await?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

/// A resumable upload: nothing exists until the first chunk goes.
pub(crate) struct ResumableWriter {
    inner: Arc<Inner>,
    /// The plugin's path (for tokens).
    path: String,
    /// The name the bytes go to: the final one, or a staging name.
    name: String,
    /// The staging id when staged.
    staging_id: Option<String>,
    buffer: Vec<u8>,
    /// The session URL, once the upload started.
    session: Option<String>,
    /// Bytes handed to chunks so far.
    sent: u64,
    /// The chunk on the wire.
    in_flight: Option<JoinHandle<Result<(), Error>>>,
    /// A failure of an earlier chunk, reported on the next call.
    failed: Option<Error>,
}

impl ResumableWriter {
    pub(crate) fn new(inner: Arc<Inner>, path: String, staged: bool) -> Result<Self, Error> {
        let staging_id = staged.then(|| uuid::Uuid::new_v4().simple().to_string());
        let name = match &staging_id {
            Some(id) => inner.staging_name(id)?,
            None => format!("{}{path}", inner.url.prefix),
        };
        Ok(ResumableWriter {
            inner,
            path,
            name,
            staging_id,
            buffer: Vec::new(),
            session: None,
            sent: 0,
            in_flight: None,
            failed: None,
        })
    }

    /// Start the resumable session.
    async fn start(inner: &Inner, name: &str) -> Result<String, Error> {
        let what = inner.describe(name);
        let url = inner.client.upload_url(&inner.url.bucket);
        let response = inner
            .client
            .send(&what, || {
                inner
                    .client
                    .http
                    .post(&url)
                    .query(&[("uploadType", "resumable"), ("name", name)])
                    .header(reqwest::header::CONTENT_TYPE, JSON)
                    .body(serde_json::json!({"name": name}).to_string())
            })
            .await?;
        let response = client::ok(response, &what).await?;
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::internal(format!(
                    "{what}: GCS started an upload but gave no session URL"
                ))
            })?;
        Ok(inner.client.session_url(location))
    }

    /// PUT `chunk` at `from` into `session`; `total` is set on the last.
    async fn put(
        inner: &Inner,
        name: &str,
        session: &str,
        chunk: Bytes,
        from: u64,
        total: Option<u64>,
    ) -> Result<(), Error> {
        let what = inner.describe(name);
        let total_text = total.map_or("*".to_string(), |t| t.to_string());
        let range = format!(
            "bytes {from}-{}/{total_text}",
            from + (chunk.len() as u64).max(1) - 1
        );
        let response = inner
            .client
            .send(&what, || {
                inner
                    .client
                    .http
                    .put(session)
                    .header(reqwest::header::CONTENT_RANGE, &range)
                    .body(chunk.clone())
            })
            .await?;
        // 308: more expected (every chunk but the last).
        if total.is_none() && response.status().as_u16() == 308 {
            return Ok(());
        }
        if total.is_some() && response.status().is_success() {
            return Ok(());
        }
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Err(client::classify(status, &body, &what))
    }

    /// Wait for the chunk on the wire and keep its failure.
    fn settle(&mut self) -> Result<(), Error> {
        if let Some(handle) = self.in_flight.take() {
            let outcome = block_on(handle).unwrap_or_else(|e| {
                Err(Error::internal(format!(
                    "{}: the upload task failed: {e}",
                    self.inner.describe(&self.name)
                )))
            });
            if let Err(e) = outcome {
                self.failed = Some(e);
            }
        }
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Send the first [`CHUNK`] bytes of the buffer, after the one before.
    fn send_chunk(&mut self) -> Result<(), Error> {
        self.settle()?;
        let session = match &self.session {
            Some(session) => session.clone(),
            None => {
                let session = block_on(Self::start(&self.inner, &self.name))?;
                self.session = Some(session.clone());
                session
            }
        };
        let rest = self.buffer.split_off(CHUNK);
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, rest));
        let from = self.sent;
        self.sent += chunk.len() as u64;
        let (inner, name) = (self.inner.clone(), self.name.clone());
        self.in_flight = Some(
            runtime()
                .spawn(async move { Self::put(&inner, &name, &session, chunk, from, None).await }),
        );
        Ok(())
    }
}

impl Write for ResumableWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(io::Error::other(e.clone()));
        }
        self.buffer.extend_from_slice(data);
        // Strictly more than a chunk: the last request always carries bytes.
        while self.buffer.len() > CHUNK {
            self.send_chunk().map_err(io::Error::other)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for ResumableWriter {
    fn staging_token(&self) -> Option<String> {
        self.staging_id
            .as_ref()
            .map(|id| format!("{}\n{id}", self.path))
    }

    fn finish(mut self: Box<Self>) -> Result<Option<Box<dyn Staged>>, Error> {
        self.settle()?;
        let last = Bytes::from(std::mem::take(&mut self.buffer));
        let inner = self.inner.clone();
        match self.session.take() {
            // Small enough for one request.
            None => block_on(upload_whole(&inner, &self.name, last))?,
            Some(session) => {
                let total = self.sent + last.len() as u64;
                let put = Self::put(&inner, &self.name, &session, last, self.sent, Some(total));
                if let Err(e) = block_on(put) {
                    self.session = Some(session);
                    return Err(e);
                }
            }
        }
        Ok(self.staging_id.take().map(|id| {
            Box::new(StagedObject {
                inner: inner.clone(),
                token: format!("{}\n{id}", self.path),
                staged: self.name.clone(),
                target: format!("{}{}", inner.url.prefix, self.path),
                settled: false,
            }) as Box<dyn Staged>
        }))
    }
}

impl Drop for ResumableWriter {
    fn drop(&mut self) {
        // Unfinished: cancel the session so no part of it lingers (Google
        // answers 499). A failure here only leaves a session that expires.
        if let Some(handle) = self.in_flight.take() {
            handle.abort();
        }
        if let Some(session) = self.session.take() {
            let client = self.inner.client.clone();
            let _ = block_on(async move { client.http.delete(&session).send().await });
        }
    }
}

/// A finished upload under its staging name.
struct StagedObject {
    inner: Arc<Inner>,
    token: String,
    staged: String,
    target: String,
    /// Published or kept: nothing to discard on drop.
    settled: bool,
}

impl Staged for StagedObject {
    fn staging_token(&self) -> Option<String> {
        Some(self.token.clone())
    }

    fn publish(&mut self) -> Result<(), Error> {
        block_on(publish(&self.inner, &self.staged, &self.target, false))?;
        self.settled = true;
        Ok(())
    }

    fn keep(mut self: Box<Self>) {
        self.settled = true;
    }

    fn uri(&self) -> Option<String> {
        Some(self.inner.describe(&self.staged))
    }

    fn publish_to(&mut self, path: &str) -> Result<(), Error> {
        let dst = self.inner.name(path)?;
        block_on(publish(&self.inner, &self.staged, &dst, false))?;
        self.settled = true;
        Ok(())
    }
}

impl Drop for StagedObject {
    fn drop(&mut self) {
        if !self.settled
            && let Err(e) = block_on(delete(&self.inner, &self.staged))
        {
            tracing::warn!(
                "{}: could not discard the staged object ({}): {}",
                self.inner.describe(&self.target),
                STAGING_DIR,
                e.message
            );
        }
    }
}
