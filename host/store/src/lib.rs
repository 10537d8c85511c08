//! Sluice's store: run history, stream state, workflows and the task queue.
//!
//! One [`Store`], two backends chosen by URL: SQLite (the embedded default
//! under `.sluice/`, so `sluice run` needs nothing else) and PostgreSQL
//! (`SLUICE_DATABASE_URL=postgres://…`, shared by a fleet of servers). The
//! SQL is written once; the few places the dialects differ (the clock,
//! `FOR UPDATE SKIP LOCKED`, a list of ids) are tokens [`Dialect`] renders.
//!
//! State is written only after the sink committed the data it covers, which
//! is what makes a rerun continue where the last one stopped.

mod access;
mod dialect;
mod error;
mod fleet;
mod metrics;
mod queue;
mod retention;
mod runs;
mod schedules;
mod secrets;
mod staging;
mod workflows;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Executor, Row};
use tokio::sync::Notify;

pub use access::{TokenRecord, UserRecord};
pub use dialect::Dialect;
pub use error::{Error, Result};
pub use fleet::WorkerRecord;
pub use metrics::{MetricDelta, metric_names};
pub use queue::{FinishReport, Generated, LeasedTask, Outcome, READY_CHANNEL, TaskState};
pub use retention::Pruned;
pub use runs::{RunRecord, RunStatus};
pub use schedules::{Leadership, ScheduleRecord};
pub use secrets::SecretKey;
pub use staging::{CommittedObject, StagedRecord};
pub use workflows::{
    AttemptRecord, AttemptStatus, NewAttempt, NewTask, Plan, ProjectRecord, RetryPolicy,
    SessionRecord, TaskRecord, TaskStart,
};

/// The store: a connection pool and the dialect of the database behind it.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    url: String,
    /// Wakes this process's workers when tasks become ready; other
    /// processes hear PostgreSQL NOTIFY.
    ready: Arc<Notify>,
    /// At most this many tasks run at once across the fleet (leases made
    /// through this store respect it).
    max_running: Option<i64>,
}

impl Store {
    /// Open the store at `url` (`postgres://…`, or `sqlite://path`) and bring
    /// its schema up to date.
    ///
    /// # Errors
    /// When the database cannot be reached or migrated.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url).ok_or_else(|| Error::Open {
            location: redact(url),
            source: sqlx::Error::Configuration(
                "expected a postgres:// or sqlite:// URL".to_string().into(),
            ),
        })?;
        let location = redact(url);
        let open_err = |source| Error::Open {
            location: location.clone(),
            source,
        };
        let options: AnyConnectOptions = url.parse().map_err(open_err)?;
        let options = options.disable_statement_logging();
        let pool = match dialect {
            Dialect::Sqlite => {
                // One connection: SQLite has one writer anyway, and a single
                // connection never meets a lock upgrade it cannot win.
                AnyPoolOptions::new()
                    .max_connections(1)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA busy_timeout = 30000").await?;
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await
            }
            Dialect::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await
            }
        }
        .map_err(open_err)?;
        migrator(dialect).run(&pool).await?;
        Ok(Store {
            pool,
            dialect,
            url: url.to_string(),
            ready: Arc::new(Notify::new()),
            max_running: None,
        })
    }

    /// Open (creating if needed) the SQLite file at `path`.
    ///
    /// # Errors
    /// When the file cannot be created or migrated.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Open {
                location: path.display().to_string(),
                source: sqlx::Error::Io(e),
            })?;
        }
        Store::open(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Lease through this store only while fewer than `max` tasks run in
    /// the whole fleet (`sluice server --max-running`). Every worker of a
    /// fleet should be given the same limit.
    pub fn with_max_running(mut self, max: Option<i64>) -> Store {
        self.max_running = max.map(|m| m.max(1));
        self
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The URL with any password hidden, for messages.
    pub fn location(&self) -> String {
        redact(&self.url)
    }

    /// The URL it was opened with (the listener needs its own connection).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Render SQL written with dialect tokens.
    fn sql(&self, text: &str) -> String {
        self.dialect.render(text)
    }

    /// Whether the database answers and its schema is the one this binary
    /// expects (another process may have migrated it further, or a failed
    /// migration left it behind): `/readyz`.
    ///
    /// # Errors
    /// When it does not answer, or the schema is not current.
    pub async fn readiness(&self) -> Result<()> {
        let row = sqlx::query("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await?;
        let applied: Option<i64> = row.try_get(0)?;
        let expected = migrator(self.dialect).iter().map(|m| m.version).max();
        if applied != expected {
            return Err(Error::Data(format!(
                "the schema is at migration {}, this binary expects {}",
                applied.unwrap_or(0),
                expected.unwrap_or(0)
            )));
        }
        Ok(())
    }

    /// Whether the database answers, for readiness checks.
    ///
    /// # Errors
    /// When it does not.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The schema migrations this binary carries for a dialect.
fn migrator(dialect: Dialect) -> &'static Migrator {
    match dialect {
        Dialect::Sqlite => &SQLITE_MIGRATIONS,
        Dialect::Postgres => &POSTGRES_MIGRATIONS,
    }
}

/// Hide the password in a database URL.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(redact("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact("sqlite://a.db"), "sqlite://a.db");
    }
}
