//! Plugin registries, and the lockfile that pins what a project runs.
//!
//! A registry is a tree of plain files, so it can be served by anything
//! that serves files: a local directory, an HTTP(S) server, or an S3 prefix.
//!
//! ```text
//! index/<name>.json                              every release of a plugin
//! artifacts/<name>/<version>/<name>-<version>.wasm
//! ```
//!
//! Each release records its kind, the WIT package it was built against,
//! the artifact's sha256 and, normally, an ed25519 signature over name,
//! version and digest. Installing resolves a semver requirement against the
//! index, downloads the artifact, and accepts it only if the digest matches
//! and the signature verifies against a trusted key. What was installed is
//! recorded in `sluice.lock`, so later runs use exactly those bytes and
//! need no registry at all.

mod error;
mod index;
mod location;
mod lock;
mod signing;

pub use error::{Error, Result};
pub use index::{PluginIndex, Release, Signature, parse_spec, valid_name};
pub use location::{Registry, Trust};
pub use lock::{LOCK_FILE, Lock, Locked};
pub use signing::{PublicKey, SecretKey, release_message};

/// The sha256 of `bytes`, as lowercase hex: how artifacts are named and checked.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}
