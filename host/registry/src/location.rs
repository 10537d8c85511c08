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

/// A registry: a directory, an HTTP(S) base URL (read-only), or an S3 prefix.
#[derive(Debug, Clone)]
pub enum Registry {
    /// A local directory (or `file://` URL).
    Dir(PathBuf),
    /// `http://` or `https://`: read-only, served by any web server.
    Http(String),
    /// `s3://bucket/prefix`, through the AWS credential chain
    /// (`AWS_ENDPOINT_URL` for an S3-compatible server).
    S3(String),
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
        let message = release_message(name, &version, &release.sha256);
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
        if location.starts_with("http://") || location.starts_with("https://") {
            return Ok(Registry::Http(location.trim_end_matches('/').to_string()));
        }
        if let Some(path) = location.strip_prefix("file://") {
            return Ok(Registry::Dir(PathBuf::from(path)));
        }
        if location.contains("://") {
            return Err(Error::Invalid(format!(
                "registry {location}: use a directory, file://, http(s):// or s3://"
            )));
        }
        Ok(Registry::Dir(PathBuf::from(location)))
    }

    /// The location as given, for messages and for `sluice.lock`.
    pub fn url(&self) -> String {
        match self {
            Registry::Dir(path) => path.display().to_string(),
            Registry::Http(url) | Registry::S3(url) => url.clone(),
        }
    }

    fn unreachable(&self, message: impl std::fmt::Display) -> Error {
        Error::Unreachable {
            registry: self.url(),
            message: message.to_string(),
        }
    }

    fn s3(&self, url: &str) -> Result<Arc<dyn ObjectStore>> {
        let store = sluice_s3::S3Store::new(&format!("{url}/"), &sluice_s3::S3Settings::from_env())
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
            Registry::S3(url) => {
                let store = self.s3(url)?;
                let path = path.to_string();
                let this = self.clone();
                tokio::task::spawn_blocking(move || match store.stat(&path) {
                    Ok(None) => Ok(None),
                    Ok(Some(info)) => store
                        .read(&path, 0, info.size)
                        .map(Some)
                        .map_err(|e| this.unreachable(e)),
                    Err(e) => Err(this.unreachable(e)),
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
                "registry {url} is served over HTTP, read-only: publish to its directory or S3 prefix"
            ))),
            Registry::S3(url) => {
                let store = self.s3(url)?;
                let path = path.to_string();
                let this = self.clone();
                tokio::task::spawn_blocking(move || {
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

    /// The newest release of `name` matching `req`.
    ///
    /// # Errors
    /// No such plugin, no matching release, an unreachable registry.
    pub async fn resolve(&self, name: &str, req: &VersionReq) -> Result<Release> {
        let index = self
            .index(name)
            .await?
            .ok_or_else(|| Error::UnknownPlugin {
                registry: self.url(),
                name: name.into(),
            })?;
        index.best(req).cloned().ok_or_else(|| Error::NoMatch {
            registry: self.url(),
            name: name.into(),
            req: req.to_string(),
            available: index.versions(),
        })
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
        trust.check(name, release)?;
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
        let mut index = self.index(name).await?.unwrap_or(PluginIndex {
            name: name.into(),
            releases: Vec::new(),
        });
        if index.releases.iter().any(|r| r.version == release.version) {
            return Err(Error::AlreadyPublished {
                registry: self.url(),
                name: name.into(),
                version: release.version.to_string(),
            });
        }
        let version = release.version.to_string();
        release.sha256 = sha256_hex(&bytes);
        release.size = bytes.len() as u64;
        release.artifact = format!("artifacts/{name}/{version}/{name}-{version}.wasm");
        release.published_at = now.to_string();
        release.signature = key.map(|key| Signature {
            key: key.public().to_string(),
            value: key.sign(&release_message(name, &version, &release.sha256)),
        });
        self.put(&release.artifact, bytes).await?;
        index.releases.push(release.clone());
        index.releases.sort_by(|a, b| a.version.cmp(&b.version));
        let text = serde_json::to_vec_pretty(&index)
            .map_err(|e| Error::Invalid(format!("index of {name}: {e}")))?;
        self.put(&format!("index/{name}.json"), text).await?;
        Ok(release)
    }
}
