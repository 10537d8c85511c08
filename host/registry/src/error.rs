//! What can go wrong finding, fetching, checking and recording plugins.

/// `Result` with the registry's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every refusal names the plugin, the version and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registry cannot be reached (down, refused, a network error).
    #[error("registry {registry} cannot be reached: {message}")]
    Unreachable {
        /// The registry's URL.
        registry: String,
        /// What failed.
        message: String,
    },
    /// No such plugin in the registry.
    #[error("registry {registry} has no plugin {name}")]
    UnknownPlugin {
        /// The registry's URL.
        registry: String,
        /// The plugin asked for.
        name: String,
    },
    /// The plugin exists, but no release matches the requirement.
    #[error("no release of {name} matches {req} in {registry} (it has {available})")]
    NoMatch {
        /// The registry's URL.
        registry: String,
        /// The plugin.
        name: String,
        /// The requirement.
        req: String,
        /// The versions there are.
        available: String,
    },
    /// The artifact is not what was published.
    #[error(
        "{name} {version}: the artifact's sha256 is {found}, but {expected} was published: \
         it was changed after publishing, refusing it"
    )]
    DigestMismatch {
        /// The plugin.
        name: String,
        /// Its version.
        version: String,
        /// The digest recorded at publication (or in sluice.lock).
        expected: String,
        /// The digest of the bytes at hand.
        found: String,
    },
    /// No signature, and one is required.
    #[error(
        "{name} {version} is not signed, and signatures are required \
         (pass --allow-unsigned to accept unsigned plugins)"
    )]
    Unsigned {
        /// The plugin.
        name: String,
        /// Its version.
        version: String,
    },
    /// Signed, but not by a key this installation trusts.
    #[error(
        "{name} {version} is signed by {key}, which is not trusted \
         (add it with --trusted-key or SLUICE_TRUSTED_KEYS)"
    )]
    UntrustedKey {
        /// The plugin.
        name: String,
        /// Its version.
        version: String,
        /// The key that signed it.
        key: String,
    },
    /// The signature is not valid for these bytes.
    #[error("{name} {version}: the signature does not verify against {key}: refusing it")]
    BadSignature {
        /// The plugin.
        name: String,
        /// Its version.
        version: String,
        /// The key named by the signature.
        key: String,
    },
    /// This version was published already; releases never change.
    #[error(
        "{kind} {name} {version} is already in {registry}; releases never change, publish a new version"
    )]
    AlreadyPublished {
        /// The registry's URL.
        registry: String,
        /// The plugin.
        name: String,
        /// Its kind.
        kind: String,
        /// Its version.
        version: String,
    },
    /// A malformed index, lockfile, key, name or requirement.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing a local file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
