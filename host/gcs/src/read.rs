//! Streaming reads: one ranged GET per open object, pumped by a task on the
//! GCS runtime into a small bounded queue, so the network and the decoder
//! overlap and memory stays at a few MiB per reader. A connection dropped
//! mid-object resumes at the byte it stopped, asking for the generation the
//! first response named, so a replaced object is never spliced in.

use std::io::{self, Read};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use reqwest::{Response, StatusCode};
use sluice_codec::Error;
use tokio::sync::mpsc;

use crate::client;
use crate::{Inner, block_on, runtime};

/// Bytes handed from the pump to the reader at a time (at least).
const CHUNK: usize = 1 << 20;
/// Chunks queued ahead of the reader.
const AHEAD: usize = 4;
/// Fresh GETs after a connection breaks mid-object.
const RESUMES: u32 = 3;

/// Up to `len` bytes at `offset`, in one GET.
pub(crate) fn range(inner: &Inner, name: &str, offset: u64, len: u64) -> Result<Vec<u8>, Error> {
    block_on(async {
        let Some(response) = media(inner, name, offset, Some(offset + len - 1), None).await? else {
            return Ok(Vec::new());
        };
        let body = response.bytes().await.map_err(|e| {
            Error::transient(format!("{}: read interrupted: {e}", inner.describe(name)))
        })?;
        Ok(body.to_vec())
    })
}

/// GET the bytes of `name` from `start` (to `end`, inclusive) of
/// `generation` (the live one when `None`); `None` past the end.
async fn media(
    inner: &Inner,
    name: &str,
    start: u64,
    end: Option<u64>,
    generation: Option<&str>,
) -> Result<Option<Response>, Error> {
    let what = inner.describe(name);
    let url = inner.client.object_url(&inner.url.bucket, name);
    let mut query = vec![("alt", "media")];
    if let Some(generation) = generation {
        query.push(("generation", generation));
    }
    let range = match end {
        Some(end) => format!("bytes={start}-{end}"),
        None => format!("bytes={start}-"),
    };
    let response = inner
        .client
        .send(&what, || {
            let request = inner.client.http.get(&url).query(&query);
            if start == 0 && end.is_none() {
                request
            } else {
                request.header(reqwest::header::RANGE, &range)
            }
        })
        .await?;
    match response.status() {
        // Asking from the end of an object: an empty remainder.
        StatusCode::RANGE_NOT_SATISFIABLE => Ok(None),
        StatusCode::NOT_FOUND if generation.is_some() => Err(Error::data(format!(
            "{what}: the object was replaced or deleted while it was being read"
        ))),
        StatusCode::NOT_FOUND => Err(Error::config(format!(
            "{what}: no such object (it may have been deleted after it was listed)"
        ))),
        _ => client::ok(response, &what).await.map(Some),
    }
}

/// The generation a media response is of.
fn generation_of(response: &Response) -> Option<String> {
    response
        .headers()
        .get("x-goog-generation")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// An object read front to back.
pub(crate) struct ObjectReader {
    queue: mpsc::Receiver<Result<Bytes, Error>>,
    current: Bytes,
    pump: tokio::task::JoinHandle<()>,
}

impl ObjectReader {
    /// Start reading `name` at `offset`. The first response is awaited
    /// here, so a missing object or a refused request fails `open`, not a
    /// read.
    pub(crate) fn open(inner: Arc<Inner>, name: String, offset: u64) -> Result<Self, Error> {
        let first = block_on(media(&inner, &name, offset, None, None))?;
        let (tx, queue) = mpsc::channel(AHEAD);
        let pump = runtime().spawn(async move {
            let Some(first) = first else { return };
            let source = Source {
                generation: generation_of(&first),
                inner,
                name,
                offset,
            };
            if let Err(e) = source.pump(first, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(ObjectReader {
            queue,
            current: Bytes::new(),
            pump,
        })
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        // Stop downloading what nobody will read (a sample, a failed task).
        self.pump.abort();
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.queue.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Where a pump is in one object.
struct Source {
    inner: Arc<Inner>,
    name: String,
    generation: Option<String>,
    offset: u64,
}

impl Source {
    /// Stream the body into `tx` in chunks of at least [`CHUNK`] bytes,
    /// asking again from the byte reached when a connection breaks. Returns
    /// when the object ends or the reader is gone.
    async fn pump(
        mut self,
        mut response: Response,
        tx: &mpsc::Sender<Result<Bytes, Error>>,
    ) -> Result<(), Error> {
        let mut pending = BytesMut::new();
        let mut resumes = 0;
        loop {
            let error = loop {
                match response.chunk().await {
                    Ok(Some(bytes)) => {
                        self.offset += bytes.len() as u64;
                        pending.extend_from_slice(&bytes);
                        if pending.len() >= CHUNK
                            && tx.send(Ok(pending.split().freeze())).await.is_err()
                        {
                            return Ok(());
                        }
                    }
                    Ok(None) => {
                        if !pending.is_empty() {
                            let _ = tx.send(Ok(pending.freeze())).await;
                        }
                        return Ok(());
                    }
                    Err(e) => break e,
                }
            };
            resumes += 1;
            if resumes > RESUMES {
                return Err(Error::transient(format!(
                    "{}: read interrupted at byte {}: {error}",
                    self.inner.describe(&self.name),
                    self.offset
                )));
            }
            tracing::debug!(name = %self.name, offset = self.offset, "GCS read broke; resuming: {error}");
            let next = media(
                &self.inner,
                &self.name,
                self.offset,
                None,
                self.generation.as_deref(),
            )
            .await?;
            match next {
                Some(next) => response = next,
                None => {
                    let _ = tx.send(Ok(pending.freeze())).await;
                    return Ok(());
                }
            }
        }
    }
}
