//! `sluice admin`: API tokens and web UI users, straight on the store (this
//! is how the first admin gets in, before there is anyone to ask the API).

use std::io::BufRead;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use sluice_api::access::{Role, digest, hash_password, new_token, now_ms};
use sluice_store::Store;

/// `sluice admin …`
#[derive(Subcommand)]
pub enum AdminCommand {
    /// API tokens (`Authorization: Bearer …`).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Users of the web UI.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

/// `sluice admin token …`
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (it is shown only now; only its hash is stored).
    Create {
        /// What it is for (`ci`, `grafana`).
        #[arg(long, default_value = "cli")]
        name: String,
        /// viewer, operator or admin.
        #[arg(long, value_parser = Role::parse)]
        role: Role,
        /// Days until it stops working (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Tokens, newest first (never their secrets).
    List,
    /// Revoke a token: it stops working at once.
    Revoke {
        /// Token id.
        id: i64,
    },
}

/// `sluice admin user …`
#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user or set their password and role (signs them out).
    /// The password is read from SLUICE_PASSWORD, else the first line of stdin.
    Set {
        /// Sign-in name.
        name: String,
        /// viewer, operator or admin.
        #[arg(long, value_parser = Role::parse)]
        role: Role,
    },
    /// Users by name.
    List,
    /// Delete a user and sign them out.
    Delete {
        /// Sign-in name.
        name: String,
    },
}

pub async fn run(store: &Store, command: &AdminCommand) -> Result<()> {
    match command {
        AdminCommand::Token { command } => token(store, command).await,
        AdminCommand::User { command } => user(store, command).await,
    }
}

async fn token(store: &Store, command: &TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Create {
            name,
            role,
            expires_in_days,
        } => {
            let token = new_token();
            let now = now_ms();
            let expires = expires_in_days.map(|d| now + i64::from(d) * 86_400_000);
            let id = store
                .create_token(name, role.as_str(), &digest(&token), now, expires)
                .await?;
            eprintln!("token {id} ({name}, {role}) created; it is shown only this once:");
            println!("{token}");
        }
        TokenCommand::List => {
            println!(
                "{:>5}  {:<9} {:<20} {:<10} NAME",
                "ID", "ROLE", "LAST USED", "STATE"
            );
            for t in store.tokens(None, 10_000).await? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at.is_some_and(|e| e <= now_ms()) {
                    "expired"
                } else {
                    "live"
                };
                let used = t
                    .last_used_at
                    .map(|ms| sluice_workflow::format_time(ms, "UTC"))
                    .unwrap_or_else(|| "never".into());
                println!(
                    "{:>5}  {:<9} {:<20} {:<10} {}",
                    t.id, t.role, used, state, t.name
                );
            }
        }
        TokenCommand::Revoke { id } => {
            if !store.revoke_token(*id, now_ms()).await? {
                bail!("no live token {id}");
            }
            println!("token {id} revoked");
        }
    }
    Ok(())
}

/// The password from SLUICE_PASSWORD or the first line of stdin.
fn read_password() -> Result<String> {
    if let Ok(p) = std::env::var("SLUICE_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

async fn user(store: &Store, command: &UserCommand) -> Result<()> {
    match command {
        UserCommand::Set { name, role } => {
            let password = read_password()?;
            if password.chars().count() < sluice_api::routes::admin::MIN_PASSWORD {
                bail!(
                    "the password needs at least {} characters",
                    sluice_api::routes::admin::MIN_PASSWORD
                );
            }
            let hash = tokio::task::spawn_blocking(move || hash_password(&password))
                .await?
                .map_err(anyhow::Error::msg)?;
            store.put_user(name, &hash, role.as_str(), now_ms()).await?;
            println!("user {name} ({role}) saved");
        }
        UserCommand::List => {
            for u in store.users(None, 10_000).await? {
                println!("{:<9} {}", u.role, u.name);
            }
        }
        UserCommand::Delete { name } => {
            if !store.delete_user(name).await? {
                bail!("no user {name}");
            }
            println!("user {name} deleted");
        }
    }
    Ok(())
}

/// At first start: create the admin named by SLUICE_ADMIN_USER with the
/// password in SLUICE_ADMIN_PASSWORD, if there are no users yet.
pub async fn bootstrap_admin(store: &Store) -> Result<()> {
    let (Ok(name), Ok(password)) = (
        std::env::var("SLUICE_ADMIN_USER"),
        std::env::var("SLUICE_ADMIN_PASSWORD"),
    ) else {
        return Ok(());
    };
    if password.chars().count() < sluice_api::routes::admin::MIN_PASSWORD {
        bail!(
            "SLUICE_ADMIN_PASSWORD needs at least {} characters",
            sluice_api::routes::admin::MIN_PASSWORD
        );
    }
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await?
        .map_err(anyhow::Error::msg)?;
    if store
        .put_first_user(&name, &hash, Role::Admin.as_str(), now_ms())
        .await?
    {
        tracing::info!(user = %name, "first admin created from SLUICE_ADMIN_USER");
    }
    Ok(())
}
