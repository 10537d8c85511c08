//! Streaming reads: one ranged GET per open object, pumped by a task on the
//! S3 runtime into a small bounded queue, so the network and the decoder
//! overlap and memory stays at a few MiB per reader whatever the object's
//! size. A connection dropped mid-object resumes at the byte it stopped,
//! pinned to the object's ETag so a replaced object cannot be spliced in.

use std::io::{self, Read};
use std::sync::Arc;

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use bytes::{Bytes, BytesMut};
use sluice_codec::Error;
use tokio::sync::mpsc;

use crate::error::{classify, is_not_found};
use crate::{Inner, block_on, runtime};

/// Bytes handed from the pump to the reader at a time (at least).
const CHUNK: usize = 1 << 20;
/// Chunks queued ahead of the reader.
const AHEAD: usize = 4;
/// Fresh GETs after a connection breaks mid-object.
const RESUMES: u32 = 3;

/// Up to `len` bytes at `offset`, in one GET.
pub(crate) fn range(inner: &Inner, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, Error> {
    let got = block_on(async {
        let out = get(inner, key, offset, Some(offset + len - 1), None).await?;
        let Some(out) = out else {
            return Ok(Bytes::new());
        };
        out.body
            .collect()
            .await
            .map(|b| b.into_bytes())
            .map_err(|e| {
                Error::transient(format!("{}: read interrupted: {e}", inner.describe(key)))
            })
    })?;
    Ok(got.to_vec())
}

/// GET `key` from `start` (to `end`, inclusive), or `None` past the end.
async fn get(
    inner: &Inner,
    key: &str,
    start: u64,
    end: Option<u64>,
    etag: Option<&str>,
) -> Result<Option<GetObjectOutput>, Error> {
    let range = match (start, end) {
        (0, None) => None,
        (s, None) => Some(format!("bytes={s}-")),
        (s, Some(e)) => Some(format!("bytes={s}-{e}")),
    };
    let sent = inner
        .client
        .get_object()
        .bucket(&inner.url.bucket)
        .key(key)
        .set_range(range)
        .set_if_match(etag.map(str::to_string))
        .send()
        .await;
    match sent {
        Ok(out) => Ok(Some(out)),
        // Asking from the end of an object (an empty remainder).
        Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(416) => Ok(None),
        Err(e) if is_not_found(&e) => Err(Error::config(format!(
            "{}: no such object (it may have been deleted after it was listed)",
            inner.describe(key)
        ))),
        Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(412) => {
            Err(Error::data(format!(
                "{}: the object changed while it was being read",
                inner.describe(key)
            )))
        }
        Err(e) => Err(classify(e, &inner.describe(key))),
    }
}

/// An object read front to back.
pub(crate) struct ObjectReader {
    queue: mpsc::Receiver<Result<Bytes, Error>>,
    current: Bytes,
    pump: tokio::task::JoinHandle<()>,
}

impl ObjectReader {
    /// Start reading `key` at `offset`. The first response is awaited here,
    /// so a missing object or a refused request fails `open`, not a read.
    pub(crate) fn open(inner: Arc<Inner>, key: String, offset: u64) -> Result<Self, Error> {
        let first = block_on(get(&inner, &key, offset, None, None))?;
        let (tx, queue) = mpsc::channel(AHEAD);
        let pump = runtime().spawn(pump(inner, key, offset, first, tx));
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

/// Stream the body into the queue in chunks of at least [`CHUNK`] bytes,
/// resuming after a broken connection.
async fn pump(
    inner: Arc<Inner>,
    key: String,
    mut offset: u64,
    first: Option<GetObjectOutput>,
    tx: mpsc::Sender<Result<Bytes, Error>>,
) {
    let Some(mut response) = first else { return };
    let etag = response.e_tag().map(str::to_string);
    let mut resumes = 0;
    let mut pending = BytesMut::new();
    loop {
        match response.body.next().await {
            Some(Ok(bytes)) => {
                offset += bytes.len() as u64;
                pending.extend_from_slice(&bytes);
                if pending.len() >= CHUNK && tx.send(Ok(pending.split().freeze())).await.is_err() {
                    return;
                }
            }
            None => {
                if !pending.is_empty() {
                    let _ = tx.send(Ok(pending.freeze())).await;
                }
                return;
            }
            Some(Err(e)) => {
                resumes += 1;
                if resumes > RESUMES {
                    let _ = tx
                        .send(Err(Error::transient(format!(
                            "{}: read interrupted at byte {offset}: {e}",
                            inner.describe(&key)
                        ))))
                        .await;
                    return;
                }
                tracing::debug!(key, offset, "S3 read broke; resuming: {e}");
                match get(&inner, &key, offset, None, etag.as_deref()).await {
                    Ok(Some(next)) => response = next,
                    Ok(None) => {
                        let _ = tx.send(Ok(pending.freeze())).await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        }
    }
}
