//! ed25519 keys and release signatures.
//!
//! A signature covers the plugin's name, kind, version and artifact's
//! sha256, so it cannot be moved to other bytes, or to another release. Keys are text: `ed25519:<base64>` for a public key (safe to
//! share), `ed25519-secret:<base64>` for the secret one (keep it out of
//! repositories).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};

use crate::error::{Error, Result};

const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "ed25519-secret:";

/// What a release signature signs: name, kind, version and digest, so a
/// signature cannot be moved to other bytes or another release.
pub fn release_message(name: &str, kind: &str, version: &str, sha256: &str) -> Vec<u8> {
    format!("sluice-plugin-release-v1\n{name}\n{kind}\n{version}\n{sha256}\n").into_bytes()
}

/// A key that signs releases.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A new random key.
    ///
    /// # Errors
    /// When the operating system has no randomness to give.
    pub fn generate() -> Result<SecretKey> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed)
            .map_err(|e| Error::Invalid(format!("no randomness for a key: {e}")))?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// Parse `ed25519-secret:<base64>` (surrounding whitespace ignored).
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(text: &str) -> Result<SecretKey> {
        let bad = || Error::Invalid("not a Sluice secret key (ed25519-secret:<base64>)".into());
        let b64 = text.trim().strip_prefix(SECRET_PREFIX).ok_or_else(bad)?;
        let bytes: [u8; 32] = B64
            .decode(b64)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        Ok(SecretKey(SigningKey::from_bytes(&bytes)))
    }

    /// The key as text, for a key file.
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", B64.encode(self.0.to_bytes()))
    }

    /// The public half, to give to those who install.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Sign `message`; the signature as base64.
    pub fn sign(&self, message: &[u8]) -> String {
        B64.encode(self.0.sign(message).to_bytes())
    }
}

/// A key that verifies releases.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parse `ed25519:<base64>`.
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(text: &str) -> Result<PublicKey> {
        let bad = || {
            Error::Invalid(format!(
                "{:?} is not a Sluice public key (ed25519:<base64>)",
                text.trim()
            ))
        };
        let b64 = text.trim().strip_prefix(PUBLIC_PREFIX).ok_or_else(bad)?;
        let bytes: [u8; 32] = B64
            .decode(b64)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| bad())
    }

    /// Whether `signature` (base64) is this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Some(bytes) = B64
            .decode(signature.trim())
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
        else {
            return false;
        };
        self.0
            .verify(message, &ed25519_dalek::Signature::from_bytes(&bytes))
            .is_ok()
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", B64.encode(self.0.to_bytes()))
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_signatures_bind_name_version_and_digest() {
        let key = SecretKey::generate().unwrap();
        let again = SecretKey::parse(&key.to_text()).unwrap();
        let public = PublicKey::parse(&key.public().to_string()).unwrap();
        assert_eq!(public, again.public());
        let message = release_message("hello", "source", "0.2.1", "ab12");
        let signature = key.sign(&message);
        assert!(public.verifies(&message, &signature));
        for other in [
            release_message("hello", "source", "0.2.2", "ab12"),
            release_message("other", "source", "0.2.1", "ab12"),
            release_message("hello", "sink", "0.2.1", "ab12"),
            release_message("hello", "source", "0.2.1", "ab13"),
        ] {
            assert!(!public.verifies(&other, &signature));
        }
        let stranger = SecretKey::generate().unwrap().public();
        assert!(!stranger.verifies(&message, &signature));
        assert!(!public.verifies(&message, "not base64"));
        assert!(PublicKey::parse("ed25519:short").is_err());
        assert!(SecretKey::parse(&public.to_string()).is_err());
    }
}
