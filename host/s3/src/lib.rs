//! S3 object storage behind a `blob` grant.
//!
//! A grant of `s3://bucket/raw/` becomes an [`S3Store`]: plugin paths are
//! keys under `raw/` and cannot leave it. Reads stream one ranged GET per
//! open object with read-ahead on this crate's runtime; writes are multipart
//! uploads, a part at a time, so a 5 GB output never sits in memory. A staged
//! write uploads every part but completes the upload only when published, so
//! a sink's files appear when its task commits, and an upload that is never
//! published is aborted.
//!
//! Credentials come from the standard AWS chain (environment, profile, web
//! identity, the ECS task role on Fargate, instance profile); the endpoint
//! can be overridden for S3-compatible stores.

mod error;
mod read;
mod write;

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_s3::Client;
use sluice_codec::Error;
use sluice_codec::store::{self, ObjectInfo, ObjectStore, ObjectWriter};

use crate::error::classify;

/// The largest object one CopyObject call can copy.
const MAX_COPY: u64 = 5 << 30;

/// How to reach S3: everything optional, the AWS chain fills the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct S3Settings {
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`); by default AWS,
    /// or `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` when set.
    pub endpoint: Option<String>,
    /// The region; by default the chain's (`AWS_REGION`, profile), else `us-east-1`.
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`); by default on when an
    /// endpoint is given, since S3-compatible servers rarely resolve
    /// bucket subdomains.
    pub path_style: Option<bool>,
    /// A named profile from `~/.aws/config`.
    pub profile: Option<String>,
}

impl S3Settings {
    /// Settings from the environment alone: the AWS chain, and
    /// `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` for an S3-compatible
    /// server (what task logs and plugin registries use).
    pub fn from_env() -> S3Settings {
        S3Settings {
            endpoint: std::env::var("AWS_ENDPOINT_URL_S3")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .ok()
                .filter(|e| !e.is_empty()),
            ..S3Settings::default()
        }
    }
}

/// `s3://bucket/prefix/`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, empty or ending in `/`.
    pub prefix: String,
}

impl S3Url {
    /// Parse `s3://bucket` or `s3://bucket/some/prefix` (a prefix is a
    /// directory: `raw` and `raw/` both mean keys under `raw/`).
    ///
    /// # Errors
    /// A config error for anything else.
    pub fn parse(url: &str) -> Result<S3Url, Error> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            Error::config(format!("`{url}` is not an S3 URL (s3://bucket/prefix/)"))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.contains(['?', '#', '*']) {
            return Err(Error::config(format!("`{url}` names no bucket")));
        }
        let prefix = match prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{}/", store::normalize(p)?),
        };
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// The runtime the SDK runs on: a couple of threads drive every transfer.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluice-s3")
            .enable_all()
            .build()
            .expect("a Tokio runtime starts")
    })
}

/// Run `future` to completion from a plugin's (synchronous) thread.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// One client per distinct settings, shared by every grant in the process
/// (connections are pooled in it).
fn client(settings: &S3Settings) -> Client {
    static CLIENTS: OnceLock<Mutex<HashMap<S3Settings, Client>>> = OnceLock::new();
    let clients = CLIENTS.get_or_init(Default::default);
    if let Some(c) = clients.lock().expect("not poisoned").get(settings) {
        return c.clone();
    }
    let client = block_on(build_client(settings));
    clients
        .lock()
        .expect("not poisoned")
        .insert(settings.clone(), client.clone());
    client
}

async fn build_client(settings: &S3Settings) -> Client {
    use aws_config::timeout::TimeoutConfig;
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(60))
                .build(),
        )
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5));
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared);
    if shared.region().is_none() {
        config = config.region(aws_config::Region::from_static("us-east-1"));
    }
    let custom_endpoint = settings.endpoint.is_some() || shared.endpoint_url().is_some();
    if let Some(endpoint) = &settings.endpoint {
        config = config.endpoint_url(endpoint);
    }
    config = config.force_path_style(settings.path_style.unwrap_or(custom_endpoint));
    Client::from_conf(config.build())
}

/// Milliseconds since the Unix epoch (0 when S3 gave no time).
fn millis(time: Option<&aws_sdk_s3::primitives::DateTime>) -> u64 {
    time.and_then(|t| t.to_millis().ok()).unwrap_or(0).max(0) as u64
}

/// A bucket prefix as an [`ObjectStore`].
#[derive(Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

/// What readers and writers share with their store.
struct Inner {
    client: Client,
    url: S3Url,
}

impl Inner {
    /// The key of a plugin path.
    fn key(&self, path: &str) -> Result<String, Error> {
        Ok(format!("{}{}", self.url.prefix, store::normalize(path)?))
    }

    /// `s3://bucket/key`, for messages.
    fn describe(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.url.bucket)
    }
}

impl S3Store {
    /// The store for `url`. Nothing is contacted until the first call.
    ///
    /// # Errors
    /// A config error for a malformed URL.
    pub fn new(url: &str, settings: &S3Settings) -> Result<S3Store, Error> {
        let url = S3Url::parse(url)?;
        Ok(S3Store {
            inner: Arc::new(Inner {
                client: client(settings),
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
        block_on(
            inner
                .client
                .list_objects_v2()
                .bucket(&inner.url.bucket)
                .prefix(&inner.url.prefix)
                .max_keys(1)
                .send(),
        )
        .map(|_| ())
        .map_err(|e| classify(e, &inner.url.to_string()))
    }
}

impl ObjectStore for S3Store {
    fn location(&self) -> String {
        self.inner.url.to_string()
    }

    fn list(&self, pattern: &str, start_after: Option<&str>) -> Result<Vec<ObjectInfo>, Error> {
        let inner = &self.inner;
        let glob = store::glob(pattern)?;
        let prefix = format!("{}{}", inner.url.prefix, store::glob_prefix(pattern));
        let start_after = start_after
            .map(|after| format!("{}{after}", inner.url.prefix))
            .filter(|after| after.as_str() >= prefix.as_str());
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let page = block_on(
                inner
                    .client
                    .list_objects_v2()
                    .bucket(&inner.url.bucket)
                    .prefix(&prefix)
                    .set_start_after(start_after.clone())
                    .set_continuation_token(token.take())
                    .send(),
            )
            .map_err(|e| classify(e, &format!("s3://{}/{prefix}", inner.url.bucket)))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let Some(rel) = key.strip_prefix(&inner.url.prefix) else {
                    continue;
                };
                // Directory markers are not objects.
                if rel.ends_with('/') || !glob.is_match(rel) {
                    continue;
                }
                found.push(ObjectInfo {
                    path: rel.to_string(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    modified_ms: millis(object.last_modified()),
                });
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => break,
            }
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(found)
    }

    fn stat(&self, path: &str) -> Result<Option<ObjectInfo>, Error> {
        let inner = &self.inner;
        let key = inner.key(path)?;
        match block_on(
            inner
                .client
                .head_object()
                .bucket(&inner.url.bucket)
                .key(&key)
                .send(),
        ) {
            Ok(head) => Ok(Some(ObjectInfo {
                path: path.to_string(),
                size: head.content_length().unwrap_or(0).max(0) as u64,
                modified_ms: millis(head.last_modified()),
            })),
            Err(e) if error::is_not_found(&e) => Ok(None),
            Err(e) => Err(classify(e, &inner.describe(&key))),
        }
    }

    fn read(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>, Error> {
        let inner = &self.inner;
        let key = inner.key(path)?;
        let len = len.min(sluice_codec::local::MAX_READ);
        if len == 0 {
            return Ok(Vec::new());
        }
        read::range(inner, &key, offset, len)
    }

    fn open(&self, path: &str, offset: u64) -> Result<Box<dyn Read + Send>, Error> {
        let key = self.inner.key(path)?;
        Ok(Box::new(read::ObjectReader::open(
            self.inner.clone(),
            key,
            offset,
        )?))
    }

    fn write(&self, path: &str, data: &[u8]) -> Result<(), Error> {
        let key = self.inner.key(path)?;
        write::put(&self.inner, &key, bytes::Bytes::copy_from_slice(data))
    }

    fn create(&self, path: &str, staged: bool) -> Result<Box<dyn ObjectWriter>, Error> {
        let key = self.inner.key(path)?;
        Ok(Box::new(write::MultipartWriter::new(
            self.inner.clone(),
            key,
            staged,
        )))
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        let inner = &self.inner;
        let (src, dst) = (inner.key(from)?, inner.key(to)?);
        let size = self
            .stat(from)?
            .ok_or_else(|| Error::config(format!("{}: no such object", inner.describe(&src))))?
            .size;
        if size <= MAX_COPY {
            block_on(
                inner
                    .client
                    .copy_object()
                    .bucket(&inner.url.bucket)
                    .key(&dst)
                    .copy_source(write::copy_source(&inner.url.bucket, &src))
                    .send(),
            )
            .map_err(|e| classify(e, &inner.describe(&dst)))?;
        } else {
            write::copy_in_parts(inner, &src, &dst, size)?;
        }
        self.delete(from)
    }

    fn discard_orphan(&self, token: &str) -> Result<(), Error> {
        let path = token.split('\n').next().unwrap_or(token);
        let key = self.inner.key(path)?;
        write::abort_orphans(&self.inner, &key)
    }

    fn publish_orphan(&self, token: &str, path: &str) -> Result<(), Error> {
        let (rel, upload_id) = token.split_once('\n').unwrap_or((token, ""));
        let key = self.inner.key(rel)?;
        if rel != store::normalize(path)? {
            return Err(Error::config(format!(
                "{}: the staged upload {rel} is not for {path}",
                self.inner.describe(&key)
            )));
        }
        write::complete_orphan(&self.inner, &key, upload_id)
    }

    fn delete(&self, path: &str) -> Result<(), Error> {
        let inner = &self.inner;
        let key = inner.key(path)?;
        block_on(
            inner
                .client
                .delete_object()
                .bucket(&inner.url.bucket)
                .key(&key)
                .send(),
        )
        .map(|_| ())
        .map_err(|e| classify(e, &inner.describe(&key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = S3Url::parse("s3://bucket/raw").unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("bucket", "raw/"));
        assert_eq!(S3Url::parse("s3://b/a/b/").unwrap().prefix, "a/b/");
        assert_eq!(S3Url::parse("s3://b").unwrap().prefix, "");
        assert_eq!(S3Url::parse("s3://b/").unwrap().to_string(), "s3://b/");
        assert!(S3Url::parse("s3:///x").is_err());
        assert!(S3Url::parse("s3://b/../x").is_err());
        assert!(S3Url::parse("/tmp/x").is_err());
    }
}
