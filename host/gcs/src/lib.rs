//! Google Cloud Storage behind a `blob` grant.
//!
//! A grant of `gs://bucket/raw/` becomes a [`GcsStore`]: plugin paths are
//! object names under `raw/` and cannot leave it. Reads stream one ranged
//! GET per open object, resumed at the byte after a dropped connection and
//! pinned to the object's generation; writes are resumable uploads sent in
//! 8 MiB chunks, one in flight while the next fills, so memory stays bounded
//! whatever the object's size. A staged write uploads to a hidden name under
//! the prefix (`.sluice-staging/`) and is copied into place when published,
//! so a sink's files appear when its task commits.
//!
//! Credentials come from Google's own `google-cloud-auth`: Application
//! Default Credentials, a service-account key or a workload identity
//! federation config (an AWS task role reaching Google with no key). The
//! requests are GCS's JSON API sent with the workspace's HTTP client:
//! Google's `google-cloud-storage` crate sends its listing, copy and delete
//! calls over gRPC only, which no emulator we can install serves.

mod client;
mod read;
mod write;

use std::io::Read;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use sluice_codec::Error;
use sluice_codec::store::{self, ObjectInfo, ObjectStore, ObjectWriter};

pub use client::{GcsCredentials, GcsSettings, emulator_endpoint};

/// The Google API transport, shared with the BigQuery capability: one HTTP
/// client and token cache per endpoint and credentials, and the runtime
/// requests run on.
pub mod google {
    pub use crate::block_on;
    pub use crate::client::{Client, retryable, segment, shared};
}

use crate::client::Client;

/// Where staged objects wait under a grant's prefix until published;
/// listings never show it.
const STAGING_DIR: &str = ".sluice-staging/";

/// `gs://bucket/prefix/`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcsUrl {
    /// The bucket.
    pub bucket: String,
    /// The name prefix, empty or ending in `/`.
    pub prefix: String,
}

impl GcsUrl {
    /// Parse `gs://bucket` or `gs://bucket/some/prefix` (a prefix is a
    /// directory: `raw` and `raw/` both mean names under `raw/`).
    ///
    /// # Errors
    /// A config error for anything else.
    pub fn parse(url: &str) -> Result<GcsUrl, Error> {
        let rest = url.strip_prefix("gs://").ok_or_else(|| {
            Error::config(format!("`{url}` is not a GCS URL (gs://bucket/prefix/)"))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
        if bucket.is_empty() || !bucket.chars().all(valid) {
            return Err(Error::config(format!(
                "`{url}` names no bucket (bucket names are lowercase letters, digits, -, _ and .)"
            )));
        }
        let prefix = match prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{}/", store::normalize(p)?),
        };
        Ok(GcsUrl {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

impl std::fmt::Display for GcsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gs://{}/{}", self.bucket, self.prefix)
    }
}

/// The runtime requests run on: a couple of threads drive every transfer.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluice-gcs")
            .enable_all()
            .build()
            .expect("a Tokio runtime starts")
    })
}

/// Run `future` to completion from a plugin's (synchronous) thread.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// A bucket prefix as an [`ObjectStore`].
#[derive(Clone)]
pub struct GcsStore {
    inner: Arc<Inner>,
}

/// What readers and writers share with their store.
struct Inner {
    client: Client,
    url: GcsUrl,
}

impl Inner {
    /// The object name of a plugin path.
    fn name(&self, path: &str) -> Result<String, Error> {
        Ok(format!("{}{}", self.url.prefix, store::normalize(path)?))
    }

    /// `gs://bucket/name`, for messages.
    fn describe(&self, name: &str) -> String {
        format!("gs://{}/{name}", self.url.bucket)
    }

    /// The name a staged object waits under, from its token's second line.
    fn staging_name(&self, id: &str) -> Result<String, Error> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(Error::config(format!(
                "{}: `{id}` is not a staging id",
                self.url
            )));
        }
        Ok(format!("{}{STAGING_DIR}{id}", self.url.prefix))
    }
}

/// One object of a listing (the JSON API's fields Sluice uses).
#[derive(Deserialize)]
struct Listed {
    name: String,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    updated: Option<String>,
}

/// A page of `objects.list`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListPage {
    #[serde(default)]
    items: Vec<Listed>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl Listed {
    fn info(&self, path: &str) -> ObjectInfo {
        ObjectInfo {
            path: path.to_string(),
            size: self
                .size
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            modified_ms: self
                .updated
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis().max(0) as u64)
                .unwrap_or(0),
        }
    }
}

impl GcsStore {
    /// The store for `url`. Nothing is contacted until the first call.
    ///
    /// # Errors
    /// A config error for a malformed URL or credentials that cannot be
    /// read.
    pub fn new(url: &str, settings: &GcsSettings) -> Result<GcsStore, Error> {
        let url = GcsUrl::parse(url)?;
        Ok(GcsStore {
            inner: Arc::new(Inner {
                client: client::shared(settings)?,
                url,
            }),
        })
    }

    /// Check the bucket answers and the credentials are accepted: one cheap
    /// list under the prefix.
    ///
    /// # Errors
    /// A config error for a missing bucket, an auth error for refused
    /// credentials, a transient one for an unreachable endpoint.
    pub fn probe(&self) -> Result<(), Error> {
        let inner = &self.inner;
        block_on(self.list_page(&inner.url.prefix, None, None, Some(1))).map(|_| ())
    }

    /// One page of names under `prefix`, from `start` (inclusive).
    async fn list_page(
        &self,
        prefix: &str,
        start: Option<&str>,
        token: Option<&str>,
        max: Option<u32>,
    ) -> Result<ListPage, Error> {
        let inner = &self.inner;
        let mut query: Vec<(&str, String)> = vec![
            ("prefix", prefix.to_string()),
            (
                "fields",
                "items(name,size,updated),nextPageToken".to_string(),
            ),
        ];
        if let Some(start) = start {
            query.push(("startOffset", start.to_string()));
        }
        if let Some(token) = token {
            query.push(("pageToken", token.to_string()));
        }
        if let Some(max) = max {
            query.push(("maxResults", max.to_string()));
        }
        let url = inner.client.bucket_url(&inner.url.bucket, "o");
        let what = format!("gs://{}/{prefix}", inner.url.bucket);
        let response = inner
            .client
            .send(&what, || inner.client.http.get(&url).query(&query))
            .await?;
        client::json(response, &what).await
    }
}

impl ObjectStore for GcsStore {
    fn location(&self) -> String {
        self.inner.url.to_string()
    }

    fn uri(&self, path: &str) -> Option<String> {
        self.inner.name(path).ok().map(|n| self.inner.describe(&n))
    }

    fn list(&self, pattern: &str, start_after: Option<&str>) -> Result<Vec<ObjectInfo>, Error> {
        let inner = &self.inner;
        let glob = store::glob(pattern)?;
        let prefix = format!("{}{}", inner.url.prefix, store::glob_prefix(pattern));
        let start_after = start_after
            .map(|after| format!("{}{after}", inner.url.prefix))
            .filter(|after| after.as_str() >= prefix.as_str());
        let staging = format!("{}{STAGING_DIR}", inner.url.prefix);
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page =
                block_on(self.list_page(&prefix, start_after.as_deref(), token.as_deref(), None))?;
            for object in &page.items {
                let Some(rel) = object.name.strip_prefix(&inner.url.prefix) else {
                    continue;
                };
                // `startOffset` is inclusive; `start_after` is not.
                if Some(&object.name) == start_after.as_ref()
                    || object.name.starts_with(&staging)
                    || rel.ends_with('/')
                    || !glob.is_match(rel)
                {
                    continue;
                }
                found.push(object.info(rel));
            }
            match page.next_page_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => break,
            }
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(found)
    }

    fn stat(&self, path: &str) -> Result<Option<ObjectInfo>, Error> {
        let inner = &self.inner;
        let name = inner.name(path)?;
        let what = inner.describe(&name);
        let url = inner.client.object_url(&inner.url.bucket, &name);
        block_on(async {
            let response = inner
                .client
                .send(&what, || {
                    inner
                        .client
                        .http
                        .get(&url)
                        .query(&[("fields", "name,size,updated")])
                })
                .await?;
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let listed: Listed = client::json(response, &what).await?;
            Ok(Some(listed.info(path)))
        })
    }

    fn read(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>, Error> {
        let inner = &self.inner;
        let name = inner.name(path)?;
        let len = len.min(sluice_codec::local::MAX_READ);
        if len == 0 {
            return Ok(Vec::new());
        }
        read::range(inner, &name, offset, len)
    }

    fn open(&self, path: &str, offset: u64) -> Result<Box<dyn Read + Send>, Error> {
        let name = self.inner.name(path)?;
        Ok(Box::new(read::ObjectReader::open(
            self.inner.clone(),
            name,
            offset,
        )?))
    }

    fn write(&self, path: &str, data: &[u8]) -> Result<(), Error> {
        let name = self.inner.name(path)?;
        block_on(write::upload_whole(
            &self.inner,
            &name,
            bytes::Bytes::copy_from_slice(data),
        ))
    }

    fn create(&self, path: &str, staged: bool) -> Result<Box<dyn ObjectWriter>, Error> {
        let path = store::normalize(path)?;
        Ok(Box::new(write::ResumableWriter::new(
            self.inner.clone(),
            path,
            staged,
        )?))
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        let inner = &self.inner;
        let (src, dst) = (inner.name(from)?, inner.name(to)?);
        block_on(write::copy(inner, &src, &dst))?;
        self.delete(from)
    }

    fn discard_orphan(&self, token: &str) -> Result<(), Error> {
        // A writer that died mid-upload left an unfinished resumable
        // session: no object, and Google expires it. A finished staged
        // object is deleted.
        let Some((_, id)) = token.split_once('\n') else {
            return Ok(());
        };
        let name = self.inner.staging_name(id)?;
        block_on(write::delete(&self.inner, &name))
    }

    fn publish_orphan(&self, token: &str, path: &str) -> Result<(), Error> {
        let inner = &self.inner;
        let (rel, id) = token.split_once('\n').unwrap_or((token, ""));
        let dst = inner.name(path)?;
        if rel != store::normalize(path)? {
            return Err(Error::config(format!(
                "{}: the staged object {rel} is not for {path}",
                inner.describe(&dst)
            )));
        }
        let staged = inner.staging_name(id)?;
        block_on(write::publish(inner, &staged, &dst, true))
    }

    fn delete(&self, path: &str) -> Result<(), Error> {
        let name = self.inner.name(path)?;
        block_on(write::delete(&self.inner, &name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = GcsUrl::parse("gs://bucket/raw").unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("bucket", "raw/"));
        assert_eq!(GcsUrl::parse("gs://b/a/b/").unwrap().prefix, "a/b/");
        assert_eq!(GcsUrl::parse("gs://b").unwrap().prefix, "");
        assert_eq!(GcsUrl::parse("gs://b/").unwrap().to_string(), "gs://b/");
        for bad in [
            "gs:///x",
            "gs://b/../x",
            "/tmp/x",
            "s3://b/",
            "gs://B/x",
            "gs://b?x/",
        ] {
            assert!(GcsUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn staging_ids_are_plain() {
        let inner = Inner {
            client: client::shared(&GcsSettings {
                endpoint: Some("http://127.0.0.1:1".into()),
                credentials: GcsCredentials::Anonymous,
            })
            .unwrap(),
            url: GcsUrl::parse("gs://b/out/").unwrap(),
        };
        assert_eq!(
            inner.staging_name("0a-1f").unwrap(),
            "out/.sluice-staging/0a-1f"
        );
        for bad in ["", "../x", "a/b", "x y"] {
            assert!(inner.staging_name(bad).is_err(), "{bad}");
        }
    }
}
