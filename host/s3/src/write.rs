//! Streaming writes as multipart uploads.
//!
//! Bytes collect into one part; a full part is uploaded in the background
//! while the next fills, with at most [`IN_FLIGHT`] parts uploading, so a
//! writer holds a few parts of memory however large the object. A small
//! object that is not staged is one PUT. A staged object has every part
//! uploaded but the upload left open: publishing completes it (the object
//! appears at once), dropping it aborts it. A writer dropped before it
//! finishes aborts its upload too: a failed task leaves no object and no
//! parts to pay for.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use sluice_codec::Error;
use sluice_codec::store::{ObjectWriter, Staged};

use crate::error::classify;
use crate::{Inner, block_on, runtime};

/// Parts uploading at once per writer.
const IN_FLIGHT: usize = 2;
/// The first part size; S3 allows 10,000 parts, so it grows with the object.
const PART: usize = 8 << 20;

/// The size of part `index` (0-based): 8 MiB for the first thousand, then
/// doubling every thousand (up to 4 GiB, under S3's 5 GiB per part):
/// 10,000 parts reach past S3's 5 TiB object limit.
fn part_size(index: usize) -> usize {
    PART << (index / 1000).min(9)
}

type PartUpload = tokio::task::JoinHandle<Result<CompletedPart, Error>>;

/// An S3 object being written.
pub(crate) struct MultipartWriter {
    inner: Arc<Inner>,
    key: String,
    staged: bool,
    buf: Vec<u8>,
    upload_id: Option<String>,
    uploading: VecDeque<PartUpload>,
    done: Vec<CompletedPart>,
    parts: usize,
    /// Set once the upload is completed, handed on, or given up.
    closed: bool,
}

impl MultipartWriter {
    pub(crate) fn new(inner: Arc<Inner>, key: String, staged: bool) -> Self {
        MultipartWriter {
            inner,
            key,
            staged,
            buf: Vec::new(),
            upload_id: None,
            uploading: VecDeque::new(),
            done: Vec::new(),
            parts: 0,
            closed: false,
        }
    }

    fn upload_id(&mut self) -> Result<String, Error> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let inner = &self.inner;
        let created = block_on(
            inner
                .client
                .create_multipart_upload()
                .bucket(&inner.url.bucket)
                .key(&self.key)
                .send(),
        )
        .map_err(|e| classify(e, &inner.describe(&self.key)))?;
        let id = created
            .upload_id()
            .ok_or_else(|| Error::data(format!("{}: S3 returned no upload id", self.describe())))?
            .to_string();
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    fn describe(&self) -> String {
        self.inner.describe(&self.key)
    }

    /// Upload the buffer as the next part, in the background.
    fn send_part(&mut self) -> Result<(), Error> {
        let id = self.upload_id()?;
        self.parts += 1;
        let number = self.parts as i32;
        let body = Bytes::from(std::mem::take(&mut self.buf));
        let inner = self.inner.clone();
        let key = self.key.clone();
        self.uploading.push_back(runtime().spawn(async move {
            let sent = inner
                .client
                .upload_part()
                .bucket(&inner.url.bucket)
                .key(&key)
                .upload_id(id)
                .part_number(number)
                .body(body.into())
                .send()
                .await
                .map_err(|e| classify(e, &format!("{} part {number}", inner.describe(&key))))?;
            Ok(CompletedPart::builder()
                .set_e_tag(sent.e_tag().map(str::to_string))
                .part_number(number)
                .build())
        }));
        while self.uploading.len() > IN_FLIGHT {
            self.wait_oldest()?;
        }
        Ok(())
    }

    fn wait_oldest(&mut self) -> Result<(), Error> {
        if let Some(upload) = self.uploading.pop_front() {
            let part = block_on(upload).map_err(|e| {
                Error::transient(format!("{}: upload task: {e}", self.describe()))
            })??;
            self.done.push(part);
        }
        Ok(())
    }

    fn finish_upload(&mut self) -> Result<Option<Box<dyn Staged>>, Error> {
        if self.upload_id.is_none() && (!self.staged || self.buf.is_empty()) {
            let body = Bytes::from(std::mem::take(&mut self.buf));
            self.closed = true;
            if self.staged {
                // An empty staged object: nothing to upload until it is published.
                return Ok(Some(Box::new(StagedUpload {
                    inner: self.inner.clone(),
                    key: self.key.clone(),
                    kind: Pending::Empty,
                })));
            }
            return put(&self.inner, &self.key, body).map(|()| None);
        }
        self.send_part()?;
        while !self.uploading.is_empty() {
            self.wait_oldest()?;
        }
        let upload_id = self.upload_id.clone().expect("created by send_part");
        let parts = std::mem::take(&mut self.done);
        self.closed = true;
        let staged = StagedUpload {
            inner: self.inner.clone(),
            key: self.key.clone(),
            kind: Pending::Multipart { upload_id, parts },
        };
        if self.staged {
            Ok(Some(Box::new(staged)))
        } else {
            let mut staged = staged;
            staged.publish().map(|()| None)
        }
    }
}

/// One PUT of a whole object.
pub(crate) fn put(inner: &Inner, key: &str, body: Bytes) -> Result<(), Error> {
    block_on(
        inner
            .client
            .put_object()
            .bucket(&inner.url.bucket)
            .key(key)
            .body(body.into())
            .send(),
    )
    .map(|_| ())
    .map_err(|e| classify(e, &inner.describe(key)))
}

impl Write for MultipartWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Err(io::Error::other("object already finished"));
        }
        let room = part_size(self.parts) - self.buf.len();
        let n = data.len().min(room);
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(part_size(self.parts));
        }
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= part_size(self.parts) {
            self.send_part().map_err(io::Error::other)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The token of an object being written: its key under the prefix. What a
/// dead writer leaves is an open multipart upload on that key.
fn token(inner: &Inner, key: &str) -> Option<String> {
    key.strip_prefix(&inner.url.prefix).map(str::to_string)
}

impl ObjectWriter for MultipartWriter {
    fn staging_token(&self) -> Option<String> {
        token(&self.inner, &self.key)
    }

    fn finish(mut self: Box<Self>) -> Result<Option<Box<dyn Staged>>, Error> {
        self.finish_upload()
    }
}

impl Drop for MultipartWriter {
    fn drop(&mut self) {
        for upload in self.uploading.drain(..) {
            upload.abort();
        }
        if let (false, Some(upload_id)) = (self.closed, self.upload_id.take()) {
            abort(self.inner.clone(), self.key.clone(), upload_id);
        }
    }
}

/// What publishing does.
enum Pending {
    /// Complete this upload.
    Multipart {
        upload_id: String,
        parts: Vec<CompletedPart>,
    },
    /// Put an empty object.
    Empty,
    /// Nothing: published, or let go of.
    Done,
}

/// A finished upload waiting for its task to commit.
struct StagedUpload {
    inner: Arc<Inner>,
    key: String,
    kind: Pending,
}

impl Staged for StagedUpload {
    fn staging_token(&self) -> Option<String> {
        // The key, and the upload to complete (none for an empty object).
        let upload = match &self.kind {
            Pending::Multipart { upload_id, .. } => upload_id.as_str(),
            _ => "",
        };
        token(&self.inner, &self.key).map(|path| format!("{path}\n{upload}"))
    }

    fn publish(&mut self) -> Result<(), Error> {
        let inner = self.inner.clone();
        match &self.kind {
            Pending::Done => Ok(()),
            Pending::Empty => {
                put(&inner, &self.key, Bytes::new())?;
                self.kind = Pending::Done;
                Ok(())
            }
            Pending::Multipart { upload_id, parts } => {
                complete(&inner, &self.key, upload_id, parts.clone())?;
                self.kind = Pending::Done;
                Ok(())
            }
        }
    }

    fn keep(mut self: Box<Self>) {
        self.kind = Pending::Done;
    }
}

/// Complete a multipart upload with its parts.
fn complete(
    inner: &Inner,
    key: &str,
    upload_id: &str,
    parts: Vec<CompletedPart>,
) -> Result<(), Error> {
    block_on(
        inner
            .client
            .complete_multipart_upload()
            .bucket(&inner.url.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send(),
    )
    .map(|_| ())
    .map_err(|e| classify(e, &inner.describe(key)))
}

impl Drop for StagedUpload {
    fn drop(&mut self) {
        if let Pending::Multipart { upload_id, .. } =
            std::mem::replace(&mut self.kind, Pending::Done)
        {
            abort(self.inner.clone(), self.key.clone(), upload_id);
        }
    }
}

/// Publish an upload an earlier process finished and committed: complete
/// it with the parts S3 holds for it (or put the empty object it stands
/// for). An upload S3 no longer knows was completed already.
pub(crate) fn complete_orphan(inner: &Inner, key: &str, upload_id: &str) -> Result<(), Error> {
    if upload_id.is_empty() {
        return put(inner, key, Bytes::new());
    }
    let what = inner.describe(key);
    let mut parts = Vec::new();
    let mut marker = None;
    loop {
        let page = match block_on(
            inner
                .client
                .list_parts()
                .bucket(&inner.url.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.take())
                .send(),
        ) {
            Ok(page) => page,
            Err(e) if crate::error::is_no_such_upload(&e) => return Ok(()),
            Err(e) => return Err(classify(e, &what)),
        };
        parts.extend(page.parts().iter().map(|p| {
            CompletedPart::builder()
                .set_e_tag(p.e_tag().map(str::to_string))
                .set_part_number(p.part_number())
                .build()
        }));
        match page.next_part_number_marker() {
            Some(next) if page.is_truncated() == Some(true) => marker = Some(next.to_string()),
            _ => break,
        }
    }
    complete(inner, key, upload_id, parts)
}

/// Abort every multipart upload open on `key`: what writers that died
/// before publishing left there (a `kill -9` runs no destructor).
pub(crate) fn abort_orphans(inner: &Inner, key: &str) -> Result<(), Error> {
    let what = inner.describe(key);
    let mut key_marker = None;
    let mut id_marker = None;
    loop {
        let page = block_on(
            inner
                .client
                .list_multipart_uploads()
                .bucket(&inner.url.bucket)
                .prefix(key)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send(),
        )
        .map_err(|e| classify(e, &what))?;
        for upload in page.uploads() {
            let (Some(k), Some(id)) = (upload.key(), upload.upload_id()) else {
                continue;
            };
            if k != key {
                continue;
            }
            block_on(
                inner
                    .client
                    .abort_multipart_upload()
                    .bucket(&inner.url.bucket)
                    .key(k)
                    .upload_id(id)
                    .send(),
            )
            .map_err(|e| classify(e, &what))?;
        }
        if page.is_truncated() != Some(true) {
            return Ok(());
        }
        key_marker = page.next_key_marker().map(str::to_string);
        id_marker = page.next_upload_id_marker().map(str::to_string);
        if key_marker.is_none() && id_marker.is_none() {
            return Ok(());
        }
    }
}

/// Abort an upload so its parts are not kept (and billed). Waits for it
/// when called from a plain thread; from async code it is sent off.
fn abort(inner: Arc<Inner>, key: String, upload_id: String) {
    let task = async move {
        let aborted = inner
            .client
            .abort_multipart_upload()
            .bucket(&inner.url.bucket)
            .key(&key)
            .upload_id(&upload_id)
            .send()
            .await;
        if let Err(e) = aborted {
            tracing::warn!(
                key,
                "could not abort an unfinished upload (a bucket lifecycle rule will): {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            );
        }
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        runtime().spawn(task);
    } else {
        block_on(task);
    }
}

/// `bucket/key` for CopySource, with the key percent-encoded.
pub(crate) fn copy_source(bucket: &str, key: &str) -> String {
    let mut out = format!("{bucket}/");
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Copy an object larger than one CopyObject allows, in 512 MiB ranges.
pub(crate) fn copy_in_parts(inner: &Inner, src: &str, dst: &str, size: u64) -> Result<(), Error> {
    const RANGE: u64 = 512 << 20;
    let what = inner.describe(dst);
    block_on(async {
        let created = inner
            .client
            .create_multipart_upload()
            .bucket(&inner.url.bucket)
            .key(dst)
            .send()
            .await
            .map_err(|e| classify(e, &what))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let mut parts = Vec::new();
        let mut start = 0;
        while start < size {
            let end = (start + RANGE).min(size) - 1;
            let number = parts.len() as i32 + 1;
            let copied = inner
                .client
                .upload_part_copy()
                .bucket(&inner.url.bucket)
                .key(dst)
                .upload_id(&upload_id)
                .part_number(number)
                .copy_source(copy_source(&inner.url.bucket, src))
                .copy_source_range(format!("bytes={start}-{end}"))
                .send()
                .await;
            let copied = match copied {
                Ok(c) => c,
                Err(e) => {
                    let _ = inner
                        .client
                        .abort_multipart_upload()
                        .bucket(&inner.url.bucket)
                        .key(dst)
                        .upload_id(&upload_id)
                        .send()
                        .await;
                    return Err(classify(e, &what));
                }
            };
            parts.push(
                CompletedPart::builder()
                    .set_e_tag(
                        copied
                            .copy_part_result()
                            .and_then(|r| r.e_tag())
                            .map(str::to_string),
                    )
                    .part_number(number)
                    .build(),
            );
            start = end + 1;
        }
        inner
            .client
            .complete_multipart_upload()
            .bucket(&inner.url.bucket)
            .key(dst)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, &what))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_to_reach_five_tib() {
        assert_eq!(part_size(0), 8 << 20);
        assert_eq!(part_size(1000), 16 << 20);
        let total: u64 = (0..10_000).map(|i| part_size(i) as u64).sum();
        assert!(total > 5 << 40, "{total}");
        assert_eq!(copy_source("b", "a b/ü.csv"), "b/a%20b/%C3%BC.csv");
    }
}
