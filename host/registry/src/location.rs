//! Where a registry is, and what can be done with it: read the index,
//! fetch and check an artifact, publish a release.

use std::path::PathBuf;
use std::sync::Arc;

use semver::VersionReq;
use sluice_codec::store::ObjectStore;

use crate::error::{Error, Result};
use crate::index::{PluginIndex, Release, Signature, valid_name};
use crate::sha256_hex;
use crate::signing::{PublicKey, SecretKey, release_message};

/// A registry: a directory, an HTTP(S) base URL (read-only), or an S3 or
/// GCS prefix.
#[derive(Debug, Clone)]
pub enum Registry {
    /// A local directory (or `file://` URL).
    Dir(PathBuf),
    /// `http://` or `https://`: read-only, served by any web server.
    Http(String),
    /// `s3://bucket/prefix`, through the AWS credential chain
    /// (`AWS_ENDPOINT_URL` for an S3-compatible server).
    S3(String),
    /// `gs://bucket/prefix`, through Google's Application Default
    /// Credentials (`STORAGE_EMULATOR_HOST` for an emulator).
    Gcs(String),
}

/// Which releases an installation accepts.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Keys whose signatures are accepted.
    pub keys: Vec<PublicKey>,
    /// Accept releases that carry no signature at all.
    pub allow_unsigned: bool,
}

impl Trust {
    /// Keys from text: whitespace- or comma-separated `ed25519:` keys (as
    /// `SLUICE_TRUSTED_KEYS` holds them).
    ///
    /// # Errors
    /// A malformed key.
    pub fn parse_keys(text: &str) -> Result<Vec<PublicKey>> {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|k| !k.is_empty())
            .map(PublicKey::parse)
            .collect()
    }

    /// Check a release's signature for `bytes` whose digest was verified.
    ///
    /// # Errors
    /// Unsigned (unless allowed), signed by an untrusted key, or a
    /// signature that does not verify.
    pub fn check(&self, name: &str, release: &Release) -> Result<()> {
        let version = release.version.to_string();
        let Some(signature) = &release.signature else {
            return if self.allow_unsigned {
                Ok(())
            } else {
                Err(Error::Unsigned {
                    name: name.into(),
                    version,
                })
            };
        };
        let key = PublicKey::parse(&signature.key)?;
        if !self.keys.contains(&key) {
            return Err(Error::UntrustedKey {
                name: name.into(),
                version,
                key: signature.key.clone(),
            });
        }
        let message = release_message(name, &release.kind, &version, &release.sha256);
        if !key.verifies(&message, &signature.value) {
            return Err(Error::BadSignature {
                name: name.into(),
                version,
                key: signature.key.clone(),
            });
        }
        Ok(())
    }
}

impl Registry {
    /// Parse a registry's location.
    ///
    /// # Errors
    /// An unsupported URL scheme.
    pub fn parse(location: &str) -> Result<Registry> {
        let location = location.trim();
        if location.starts_with("s3://") {
            sluice_s3::S3Url::parse(location)
                .map_err(|e| Error::Invalid(format!("registry {location}: {e}")))?;
            return Ok(Registry::S3(location.trim_end_matches('/').to_string()));
        }
        if location.starts_with("gs://") {
            sluice_gcs::GcsUrl::parse(location)
                .map_err(|e| Error::Invalid(format!("registry {location}: {e}")))?;
            return Ok(Registry::Gcs(location.trim_end_matches('/').to_string()));
        }
        if location.starts_with("http://") || location.starts_with("https://") {
            return Ok(Registry::Http(location.trim_end_matches('/').to_string()));
        }
        let location = location.strip_prefix("file://").unwrap_or(location);
        if location.contains("://") {
            return Err(Error::Invalid(format!(
                "registry {location}: use a directory, file://, http(s)://, s3:// or gs://"
            )));
        }
        // Absolute, so that sluice.lock can find it again from anywhere.
        let path = PathBuf::from(location);
        Ok(Registry::Dir(std::path::absolute(&path).unwrap_or(path)))
    }

    /// The location as given, for messages and for `sluice.lock`.
    pub fn url(&self) -> String {
        match self {
            Registry::Dir(path) => path.display().to_string(),
            Registry::Http(url) | Registry::S3(url) | Registry::Gcs(url) => url.clone(),
        }
    }

    fn unreachable(&self, message: impl std::fmt::Display) -> Error {
        Error::Unreachable {
            registry: self.url(),
            message: message.to_string(),
        }
    }

    /// The object store for `url` (`s3://…` or `gs://…`). It blocks (it
    /// drives its own runtime), so call it from `spawn_blocking` only.
    fn object_store(&self, url: &str) -> Result<Arc<dyn ObjectStore>> {
        let dir = format!("{url}/");
        if url.starts_with("gs://") {
            let store = sluice_gcs::GcsStore::new(&dir, &sluice_gcs::GcsSettings::from_env())
                .map_err(|e| self.unreachable(e))?;
            return Ok(Arc::new(store));
        }
        let store = sluice_s3::S3Store::new(&dir, &sluice_s3::S3Settings::from_env())
            .map_err(|e| self.unreachable(e))?;
        Ok(Arc::new(store))
    }

    /// A file of the registry; `None` when it does not exist.
    async fn get(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Registry::Dir(root) => {
                if !root.is_dir() {
                    return Err(self.unreachable(format!("{} is not a directory", root.display())));
                }
                let file = root.join(path);
                match tokio::fs::read(&file).await {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io(file.display().to_string(), e)),
                }
            }
            Registry::Http(base) => {
                let url = format!("{base}/{path}");
                let response = reqwest::Client::new()
                    .get(&url)
                    .timeout(std::time::Duration::from_secs(60))
                    .send()
                    .await
                    .map_err(|e| self.unreachable(format!("GET {url}: {e}")))?;
                match response.status() {
                    s if s.is_success() => Ok(Some(
                        response
                            .bytes()
                            .await
                            .map_err(|e| self.unreachable(format!("GET {url}: {e}")))?
                            .to_vec(),
                    )),
                    reqwest::StatusCode::NOT_FOUND => Ok(None),
                    s => Err(self.unreachable(format!("GET {url}: HTTP {s}"))),
                }
            }
            Registry::S3(url) | Registry::Gcs(url) => {
                let (url, path, this) = (url.clone(), path.to_string(), self.clone());
                tokio::task::spawn_blocking(move || {
                    let store = this.object_store(&url)?;
                    match store.stat(&path) {
                        Ok(None) => Ok(None),
                        Ok(Some(info)) => store
                            .read(&path, 0, info.size)
                            .map(Some)
                            .map_err(|e| this.unreachable(e)),
                        Err(e) => Err(this.unreachable(e)),
                    }
                })
                .await
                .map_err(|e| self.unreachable(e))?
            }
        }
    }

    /// Write a file of the registry (whole, or not at all).
    async fn put(&self, path: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            Registry::Dir(root) => {
                let file = root.join(path);
                let dir = file.parent().expect("registry paths have a directory");
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| Error::io(dir.display().to_string(), e))?;
                let temp = dir.join(format!(
                    ".{}.{}.tmp",
                    file.file_name().unwrap_or_default().to_string_lossy(),
                    std::process::id()
                ));
                tokio::fs::write(&temp, bytes)
                    .await
                    .map_err(|e| Error::io(temp.display().to_string(), e))?;
                tokio::fs::rename(&temp, &file)
                    .await
                    .map_err(|e| Error::io(file.display().to_string(), e))
            }
            Registry::Http(url) => Err(Error::Invalid(format!(
                "registry {url} is served over HTTP, read-only: publish to its directory or object-store prefix"
            ))),
            Registry::S3(url) | Registry::Gcs(url) => {
                let (url, path, this) = (url.clone(), path.to_string(), self.clone());
                tokio::task::spawn_blocking(move || {
                    let store = this.object_store(&url)?;
                    store.write(&path, &bytes).map_err(|e| this.unreachable(e))
                })
                .await
                .map_err(|e| self.unreachable(e))?
            }
        }
    }

    /// A plugin's index; `None` when the registry has no such plugin.
    ///
    /// # Errors
    /// An unreachable registry, or an index that does not parse.
    pub async fn index(&self, name: &str) -> Result<Option<PluginIndex>> {
        if !valid_name(name) {
            return Err(Error::Invalid(format!("{name:?} is not a plugin name")));
        }
        let path = format!("index/{name}.json");
        let Some(bytes) = self.get(&path).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Invalid(format!("registry {}: {path}: {e}", self.url())))
    }

    /// The newest release of `name` matching `req`, for each kind
    /// published under that name (or only `kind`).
    ///
    /// # Errors
    /// No such plugin, no matching release, an unreachable registry.
    pub async fn resolve(
        &self,
        name: &str,
        req: &VersionReq,
        kind: Option<&str>,
    ) -> Result<Vec<Release>> {
        let index = self
            .index(name)
            .await?
            .ok_or_else(|| Error::UnknownPlugin {
                registry: self.url(),
                name: name.into(),
            })?;
        let kinds = match kind {
            Some(k) => vec![k.to_string()],
            None => index.kinds(),
        };
        let found: Vec<Release> = kinds
            .iter()
            .filter_map(|k| index.best(req, k).cloned())
            .collect();
        if found.is_empty() {
            return Err(Error::NoMatch {
                registry: self.url(),
                name: kind.map_or_else(|| name.to_string(), |k| format!("{k} {name}")),
                req: req.to_string(),
                available: index.versions(),
            });
        }
        Ok(found)
    }

    /// Download a release's artifact and check it: its digest against the
    /// index, its signature against `trust`. Nothing unchecked is returned.
    ///
    /// # Errors
    /// A missing artifact, a digest or signature that does not hold.
    pub async fn fetch(&self, name: &str, release: &Release, trust: &Trust) -> Result<Vec<u8>> {
        // Refuse an unacceptable signer before downloading anything.
        if release.signature.is_none() && !trust.allow_unsigned {
            trust.check(name, release)?;
        }
        let bytes = self.download(name, release).await?;
        trust.check(name, release)?;
        Ok(bytes)
    }

    /// Download the release a lock file pinned by `sha256`. The digest is
    /// the trust here: it was checked against trusted keys when the lock
    /// was written, so no keys are needed to restore exactly those bytes.
    ///
    /// # Errors
    /// The registry now lists other bytes for that version, or the artifact
    /// is missing or differs from its digest.
    pub async fn fetch_pinned(
        &self,
        name: &str,
        release: &Release,
        sha256: &str,
    ) -> Result<Vec<u8>> {
        if release.sha256 != sha256 {
            return Err(Error::DigestMismatch {
                name: name.into(),
                version: release.version.to_string(),
                expected: sha256.into(),
                found: release.sha256.clone(),
            });
        }
        self.download(name, release).await
    }

    /// An artifact's bytes, checked against the digest the index lists.
    async fn download(&self, name: &str, release: &Release) -> Result<Vec<u8>> {
        let bytes = self.get(&release.artifact).await?.ok_or_else(|| {
            self.unreachable(format!(
                "{name} {} is in the index but its artifact {} is missing",
                release.version, release.artifact
            ))
        })?;
        let found = sha256_hex(&bytes);
        if found != release.sha256 {
            return Err(Error::DigestMismatch {
                name: name.into(),
                version: release.version.to_string(),
                expected: release.sha256.clone(),
                found,
            });
        }
        Ok(bytes)
    }

    /// Publish `bytes` as `release` (its `sha256`, `size`, `artifact`,
    /// `signature` and `published_at` are filled in here), signed with
    /// `key` unless it is `None`. The artifact goes first and the index
    /// after, so a reader never sees a release without its bytes.
    ///
    /// # Errors
    /// The version exists already, the registry is read-only or unreachable.
    pub async fn publish(
        &self,
        name: &str,
        mut release: Release,
        bytes: Vec<u8>,
        key: Option<&SecretKey>,
        now: &str,
    ) -> Result<Release> {
        if !valid_name(name) {
            return Err(Error::Invalid(format!(
                "{name:?} is not a plugin name (lowercase letters, digits, '-' and '_')"
            )));
        }
        if let Registry::Dir(root) = self {
            // Publishing is how a directory registry begins.
            tokio::fs::create_dir_all(root)
                .await
                .map_err(|e| Error::io(root.display().to_string(), e))?;
        }
        let mut index = self.index(name).await?.unwrap_or(PluginIndex {
            name: name.into(),
            releases: Vec::new(),
        });
        if index
            .releases
            .iter()
            .any(|r| r.version == release.version && r.kind == release.kind)
        {
            return Err(Error::AlreadyPublished {
                registry: self.url(),
                name: name.into(),
                kind: release.kind.clone(),
                version: release.version.to_string(),
            });
        }
        let version = release.version.to_string();
        release.sha256 = sha256_hex(&bytes);
        release.size = bytes.len() as u64;
        release.artifact = format!(
            "artifacts/{name}/{version}/{}-{name}-{version}.wasm",
            release.kind
        );
        release.published_at = now.to_string();
        release.signature = key.map(|key| Signature {
            key: key.public().to_string(),
            value: key.sign(&release_message(
                name,
                &release.kind,
                &version,
                &release.sha256,
            )),
        });
        self.put(&release.artifact, bytes).await?;
        index.releases.push(release.clone());
        index
            .releases
            .sort_by(|a, b| (&a.version, &a.kind).cmp(&(&b.version, &b.kind)));
        let text = serde_json::to_vec_pretty(&index)
            .map_err(|e| Error::Invalid(format!("index of {name}: {e}")))?;
        self.put(&format!("index/{name}.json"), text).await?;
        Ok(release)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(version: &str) -> Release {
        Release {
            version: version.parse().unwrap(),
            kind: "source".into(),
            wit: "0.1.0".into(),
            description: String::new(),
            sha256: String::new(),
            size: 0,
            artifact: String::new(),
            signature: None,
            published_at: String::new(),
        }
    }

    #[tokio::test]
    async fn fetch_checks_digest_and_signer_and_a_pinned_fetch_needs_only_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::parse(dir.path().to_str().unwrap()).unwrap();
        let key = SecretKey::generate().unwrap();
        let other = SecretKey::generate().unwrap();
        let signed = registry
            .publish("p", release("0.1.0"), b"signed".to_vec(), Some(&key), "t")
            .await
            .unwrap();
        let unsigned = registry
            .publish("p", release("0.2.0"), b"unsigned".to_vec(), None, "t")
            .await
            .unwrap();
        let trusting = |keys: Vec<PublicKey>, allow_unsigned| Trust {
            keys,
            allow_unsigned,
        };

        let ok = trusting(vec![key.public()], false);
        assert_eq!(registry.fetch("p", &signed, &ok).await.unwrap(), b"signed");
        let err = registry
            .fetch("p", &signed, &trusting(vec![other.public()], false))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UntrustedKey { .. }), "{err}");
        let err = registry.fetch("p", &unsigned, &ok).await.unwrap_err();
        assert!(matches!(err, Error::Unsigned { .. }), "{err}");
        assert!(
            registry
                .fetch("p", &unsigned, &trusting(Vec::new(), true))
                .await
                .is_ok()
        );

        // A lock's digest restores the bytes without any key...
        let pinned = registry
            .fetch_pinned("p", &signed, &signed.sha256)
            .await
            .unwrap();
        assert_eq!(pinned, b"signed");
        // ...but only those bytes.
        let err = registry
            .fetch_pinned("p", &signed, &unsigned.sha256)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        std::fs::write(dir.path().join(&signed.artifact), b"tampered").unwrap();
        for result in [
            registry.fetch("p", &signed, &ok).await,
            registry.fetch_pinned("p", &signed, &signed.sha256).await,
        ] {
            let err = result.unwrap_err();
            assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        }
    }
}
