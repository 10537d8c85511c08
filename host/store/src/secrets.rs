//! Project secrets, encrypted at rest with AES-256-GCM.
//!
//! The key comes from `SLUICE_SECRET_KEY` and never reaches the database;
//! each value has its own random nonce and is bound to its project and
//! name (associated data), so a ciphertext copied to another row does not
//! decrypt.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Nonce};
use sqlx::Row;

use crate::{Error, Result, Store};

/// The key secrets are encrypted with.
#[derive(Clone)]
pub struct SecretKey(Aes256Gcm);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl SecretKey {
    /// Parse a 256-bit key written as 64 hex digits.
    ///
    /// # Errors
    /// [`Error::Key`] for anything else.
    pub fn parse(text: &str) -> Result<SecretKey> {
        let text = text.trim();
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Key(
                "SLUICE_SECRET_KEY must be 64 hex digits (32 bytes); make one with \
                 `openssl rand -hex 32`"
                    .into(),
            ));
        }
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).expect("checked hex"))
            .collect();
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|e| Error::Key(e.to_string()))?;
        Ok(SecretKey(cipher))
    }

    fn seal(&self, project: i64, name: &str, value: &str) -> Result<(Vec<u8>, Vec<u8>)> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = format!("{project}/{name}");
        let sealed = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: value.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| Error::Key("encryption failed".into()))?;
        Ok((nonce.to_vec(), sealed))
    }

    fn open(&self, project: i64, name: &str, nonce: &[u8], sealed: &[u8]) -> Result<String> {
        if nonce.len() != 12 {
            return Err(Error::Key(format!("secret {name}: bad nonce")));
        }
        let aad = format!("{project}/{name}");
        let plain = self
            .0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| {
                Error::Key(format!(
                    "secret {name} does not decrypt: SLUICE_SECRET_KEY is not the key it was \
                     stored with"
                ))
            })?;
        String::from_utf8(plain).map_err(|e| Error::Data(e.to_string()))
    }
}

impl Store {
    /// Set (or replace) a project's secret.
    ///
    /// # Errors
    /// On a database error.
    pub async fn set_secret(
        &self,
        key: &SecretKey,
        project: &str,
        name: &str,
        value: &str,
    ) -> Result<()> {
        let project_id = self.ensure_project(project).await?;
        let (nonce, sealed) = key.seal(project_id, name, value)?;
        sqlx::query(&self.sql(
            "INSERT INTO secrets (project_id, name, nonce, value, updated_at) \
             VALUES ($1, $2, $3, $4, {now}) ON CONFLICT (project_id, name) DO UPDATE SET \
             nonce = excluded.nonce, value = excluded.value, updated_at = excluded.updated_at",
        ))
        .bind(project_id)
        .bind(name)
        .bind(nonce)
        .bind(sealed)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The names of a project's secrets (never their values).
    ///
    /// # Errors
    /// On a database error.
    pub async fn secret_names(
        &self,
        project: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT s.name, s.updated_at FROM secrets s JOIN projects p ON p.id = s.project_id \
             WHERE p.name = $1 AND ($2 IS NULL OR s.name > $2) ORDER BY s.name LIMIT $3",
        )
        .bind(project)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Delete a secret; false if there was none.
    ///
    /// # Errors
    /// On a database error.
    pub async fn delete_secret(&self, project: &str, name: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM secrets WHERE name = $2 AND project_id = \
             (SELECT id FROM projects WHERE name = $1)",
        )
        .bind(project)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every secret of a project, decrypted: for the worker running its tasks.
    ///
    /// # Errors
    /// [`Error::Key`] when a value does not decrypt with `key`.
    pub async fn secrets(&self, key: &SecretKey, project: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT s.project_id, s.name, s.nonce, s.value FROM secrets s \
             JOIN projects p ON p.id = s.project_id WHERE p.name = $1 ORDER BY s.name",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let project_id: i64 = r.try_get(0)?;
                let name: String = r.try_get(1)?;
                let nonce: Vec<u8> = r.try_get(2)?;
                let sealed: Vec<u8> = r.try_get(3)?;
                let value = key.open(project_id, &name, &nonce, &sealed)?;
                Ok((name, value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn keys_must_be_256_bit_hex() {
        assert!(SecretKey::parse(KEY).is_ok());
        assert!(SecretKey::parse("short").is_err());
        assert_eq!(
            format!("{:?}", SecretKey::parse(KEY).unwrap()),
            "SecretKey(***)"
        );
    }

    #[tokio::test]
    async fn secrets_are_sealed_and_bound_to_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("s.db")).await.unwrap();
        let key = SecretKey::parse(KEY).unwrap();
        store
            .set_secret(&key, "p", "token", "hunter2")
            .await
            .unwrap();
        store.set_secret(&key, "p", "other", "x").await.unwrap();
        let raw: Vec<u8> = sqlx::query("SELECT value FROM secrets WHERE name = 'token'")
            .fetch_one(&store.pool)
            .await
            .unwrap()
            .get(0);
        assert!(!raw.windows(7).any(|w| w == b"hunter2"));
        let all = store.secrets(&key, "p").await.unwrap();
        assert_eq!(all[1], ("token".to_string(), "hunter2".to_string()));
        // A ciphertext moved to another name does not open.
        sqlx::query(
            "UPDATE secrets SET nonce = (SELECT nonce FROM secrets WHERE name = 'token'), \
             value = (SELECT value FROM secrets WHERE name = 'token') WHERE name = 'other'",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        assert!(store.secrets(&key, "p").await.is_err());
        let wrong = SecretKey::parse(&KEY.replace('0', "f")).unwrap();
        assert!(store.secrets(&wrong, "p").await.is_err());
        assert!(store.delete_secret("p", "other").await.unwrap());
        assert_eq!(store.secret_names("p", None, 10).await.unwrap().len(), 1);
    }
}
