//! Who may use the API: API tokens, users, their web sessions, and failed
//! sign-ins. Only hashes of tokens and cookies are stored; what a hash is
//! and how a password is checked is the API's business, not the store's.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Result, Store};

/// An API token as listings show it (never the token itself).
#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// Id.
    pub id: i64,
    /// What the token is for (`ci`, `grafana`).
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// Created, ms since the epoch.
    pub created_at: i64,
    /// When it stops working, ms since the epoch.
    pub expires_at: Option<i64>,
    /// Last seen, ms since the epoch (to the minute).
    pub last_used_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

/// A user of the web UI.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// Id.
    pub id: i64,
    /// Sign-in name.
    pub name: String,
    /// The argon2id hash, as a PHC string.
    pub password_hash: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// Created, ms since the epoch.
    pub created_at: i64,
}

const TOKEN_COLUMNS: &str = "id, name, role, created_at, expires_at, last_used_at, revoked_at";

fn token_from_row(r: &AnyRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        role: r.try_get(2)?,
        created_at: r.try_get(3)?,
        expires_at: r.try_get(4)?,
        last_used_at: r.try_get(5)?,
        revoked_at: r.try_get(6)?,
    })
}

const USER_COLUMNS: &str = "u.id, u.name, u.password_hash, u.role, u.created_at";

fn user_from_row(r: &AnyRow) -> Result<UserRecord> {
    Ok(UserRecord {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        password_hash: r.try_get(2)?,
        role: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

impl Store {
    /// Record a new token by its hash.
    ///
    /// # Errors
    /// On a database error (a hash collision is one).
    pub async fn create_token(
        &self,
        name: &str,
        role: &str,
        hash: &str,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO api_tokens (name, role, hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name)
        .bind(role)
        .bind(hash)
        .bind(now)
        .bind(expires_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// The live token with this hash (not revoked, not expired at `now`),
    /// noting that it was used.
    ///
    /// # Errors
    /// On a database error.
    pub async fn token_by_hash(&self, hash: &str, now: i64) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)"
        ))
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let token = token_from_row(&row)?;
        // To the minute: one write a minute per token, not one per request.
        if token.last_used_at.is_none_or(|t| now - t >= 60_000) {
            sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                .bind(token.id)
                .bind(now)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(token))
    }

    /// Tokens, newest first, older than the cursor `before` (an id).
    ///
    /// # Errors
    /// On a database error.
    pub async fn tokens(&self, before: Option<i64>, limit: i64) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE ($1 IS NULL OR id < $1) \
             ORDER BY id DESC LIMIT $2"
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Revoke a token. False when there is no live token with that id.
    ///
    /// # Errors
    /// On a database error.
    pub async fn revoke_token(&self, id: i64, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Create a user, or set an existing one's password and role. Setting
    /// a password signs the user out everywhere.
    ///
    /// # Errors
    /// On a database error.
    pub async fn put_user(
        &self,
        name: &str,
        password_hash: &str,
        role: &str,
        now: i64,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO users (name, password_hash, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, \
             role = excluded.role RETURNING id",
        )
        .bind(name)
        .bind(password_hash)
        .bind(role)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let id: i64 = row.try_get(0)?;
        sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    /// Create a user only if there are none yet (the first admin at first
    /// start). True when it was created.
    ///
    /// # Errors
    /// On a database error.
    pub async fn put_first_user(
        &self,
        name: &str,
        password_hash: &str,
        role: &str,
        now: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO users (name, password_hash, role, created_at) \
             SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM users)",
        )
        .bind(name)
        .bind(password_hash)
        .bind(role)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A user by name.
    ///
    /// # Errors
    /// On a database error.
    pub async fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Users by name, after the cursor `after` (a name).
    ///
    /// # Errors
    /// On a database error.
    pub async fn users(&self, after: Option<&str>, limit: i64) -> Result<Vec<UserRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE ($1 IS NULL OR u.name > $1) \
             ORDER BY u.name LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Delete a user and sign them out. False when there is no such user.
    ///
    /// # Errors
    /// On a database error.
    pub async fn delete_user(&self, name: &str) -> Result<bool> {
        sqlx::query(
            "DELETE FROM web_sessions WHERE user_id IN (SELECT id FROM users WHERE name = $1)",
        )
        .bind(name)
        .execute(&self.pool)
        .await?;
        let done = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Record a signed-in browser by its cookie's hash.
    ///
    /// # Errors
    /// On a database error.
    pub async fn create_web_session(
        &self,
        hash: &str,
        user_id: i64,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO web_sessions (hash, user_id, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash)
        .bind(user_id)
        .bind(csrf)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        // Expired sessions go when anyone signs in: no sweeper needed.
        sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The user and CSRF token of the live session with this cookie hash.
    ///
    /// # Errors
    /// On a database error.
    pub async fn web_session(&self, hash: &str, now: i64) -> Result<Option<(UserRecord, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, w.csrf FROM web_sessions w JOIN users u ON u.id = w.user_id \
             WHERE w.hash = $1 AND w.expires_at > $2"
        ))
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some((user_from_row(&r)?, r.try_get(5)?))),
            None => Ok(None),
        }
    }

    /// Sign a browser out.
    ///
    /// # Errors
    /// On a database error.
    pub async fn delete_web_session(&self, hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE hash = $1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Until when sign-ins as `name` are refused (ms since the epoch; 0: not).
    ///
    /// # Errors
    /// On a database error.
    pub async fn login_locked_until(&self, name: &str) -> Result<i64> {
        let row = sqlx::query("SELECT locked_until FROM login_failures WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get(0)?,
            None => 0,
        })
    }

    /// Count a failed sign-in as `name`; `lock_ms` says, from the number of
    /// failures so far, how long to refuse the next ones. Returns the count.
    ///
    /// # Errors
    /// On a database error.
    pub async fn record_login_failure(
        &self,
        name: &str,
        now: i64,
        lock_ms: impl Fn(i64) -> i64,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO login_failures (name, failures, locked_until) VALUES ($1, 1, 0) \
             ON CONFLICT (name) DO UPDATE SET failures = login_failures.failures + 1 \
             RETURNING failures",
        )
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        let failures: i64 = row.try_get(0)?;
        let lock = lock_ms(failures);
        if lock > 0 {
            sqlx::query("UPDATE login_failures SET locked_until = $2 WHERE name = $1")
                .bind(name)
                .bind(now + lock)
                .execute(&self.pool)
                .await?;
        }
        Ok(failures)
    }

    /// Forget failed sign-ins as `name` (it signed in).
    ///
    /// # Errors
    /// On a database error.
    pub async fn clear_login_failures(&self, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
