//! The registry's index: every release of a plugin, in one JSON file.

use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `index/<name>.json`: every release of every kind under one name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginIndex {
    /// The plugin's name.
    pub name: String,
    /// Its releases, oldest first.
    pub releases: Vec<Release>,
}

/// One published version.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// Its version.
    pub version: Version,
    /// `source`, `filter` or `sink`.
    pub kind: String,
    /// The version of the `sluice:plugin` WIT package it was built against.
    pub wit: String,
    /// One line about it.
    #[serde(default)]
    pub description: String,
    /// The artifact's sha256 (hex).
    pub sha256: String,
    /// The artifact's size in bytes.
    pub size: u64,
    /// Where the artifact is, relative to the registry's root.
    pub artifact: String,
    /// Who vouches for it; `None` for an unsigned release.
    #[serde(default)]
    pub signature: Option<Signature>,
    /// When it was published (RFC 3339).
    pub published_at: String,
}

/// An ed25519 signature over name, version and digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The public key that made it (`ed25519:<base64>`).
    pub key: String,
    /// The signature (base64).
    pub value: String,
}

impl PluginIndex {
    /// The newest release of `kind` matching `req` (pre-releases only when
    /// asked for, as Cargo does).
    pub fn best(&self, req: &VersionReq, kind: &str) -> Option<&Release> {
        self.releases
            .iter()
            .filter(|r| r.kind == kind && req.matches(&r.version))
            .max_by(|a, b| a.version.cmp(&b.version))
    }

    /// The kinds published under this name (a `file` source and a `file`
    /// sink share one), in a fixed order.
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.releases.iter().map(|r| r.kind.clone()).collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// Every version, for messages.
    pub fn versions(&self) -> String {
        let list: Vec<String> = self
            .releases
            .iter()
            .map(|r| r.version.to_string())
            .collect();
        if list.is_empty() {
            "no releases".into()
        } else {
            list.join(", ")
        }
    }
}

/// Plugin names are what file names and URLs can carry as they are.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !name.starts_with('-')
}

/// `name@req` (`hello@^0.2`, `hello@0.2.1`, `hello`): the name, and the
/// requirement (any version when none is given). A bare version means
/// "compatible with", as in Cargo: `0.2` accepts `0.2.x`.
///
/// # Errors
/// A bad name or requirement, saying which.
pub fn parse_spec(spec: &str) -> Result<(String, VersionReq)> {
    let (name, req) = match spec.split_once('@') {
        Some((n, r)) => (n.trim(), r.trim()),
        None => (spec.trim(), "*"),
    };
    if !valid_name(name) {
        return Err(Error::Invalid(format!(
            "{name:?} is not a plugin name (lowercase letters, digits, '-' and '_')"
        )));
    }
    let req = VersionReq::parse(req).map_err(|e| {
        Error::Invalid(format!(
            "{spec}: {req:?} is not a version requirement ({e}); e.g. {name}@^0.2"
        ))
    })?;
    Ok((name.to_string(), req))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(v: &str) -> Release {
        Release {
            version: Version::parse(v).unwrap(),
            kind: "source".into(),
            wit: "0.1.0".into(),
            description: String::new(),
            sha256: "00".into(),
            size: 1,
            artifact: "a".into(),
            signature: None,
            published_at: "2026-12-02T00:00:00Z".into(),
        }
    }

    #[test]
    fn resolves_like_cargo() {
        let index = PluginIndex {
            name: "hello".into(),
            releases: ["0.1.0", "0.2.0", "0.2.3", "0.3.0-beta.1", "1.0.0"]
                .into_iter()
                .map(release)
                .collect(),
        };
        let best = |spec: &str| {
            let (_, req) = parse_spec(spec).unwrap();
            index.best(&req, "source").map(|r| r.version.to_string())
        };
        assert_eq!(best("hello@^0.2").as_deref(), Some("0.2.3"));
        assert_eq!(best("hello@0.2").as_deref(), Some("0.2.3"));
        assert_eq!(best("hello@=0.2.0").as_deref(), Some("0.2.0"));
        assert_eq!(best("hello").as_deref(), Some("1.0.0"));
        assert_eq!(best("hello@^0.3.0-beta").as_deref(), Some("0.3.0-beta.1"));
        assert_eq!(best("hello@^0.4"), None);
        assert!(index.best(&VersionReq::STAR, "sink").is_none());
        assert_eq!(index.kinds(), vec!["source".to_string()]);
        assert!(parse_spec("Hello@1").is_err());
        assert!(parse_spec("hello@one").is_err());
        assert!(parse_spec("../x").is_err());
    }
}
