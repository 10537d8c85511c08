//! The host side of the `sql` capability.
//!
//! A job declares connections by name (`connections: {app: {url: …}}`) and
//! grants them to plugins. The plugin asks for a connection by name and gets
//! rows back as Arrow batches converted here, natively: rows never cross
//! into the sandbox one by one, and credentials never cross at all.
//!
//! Calls are blocking: plugins run on the pipeline's task threads, and the
//! async drivers run on this crate's own small Tokio runtime.

mod error;
pub mod mysql;
mod params;
pub mod postgres;

use std::sync::OnceLock;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

pub use error::{Error, ErrorKind, Result};
pub use params::{Dialect, Value, inline};

/// The runtime the drivers run on: two threads are plenty, since decoding
/// happens on the callers' threads.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluice-sql")
            .enable_all()
            .build()
            .expect("a Tokio runtime starts")
    })
}

/// A column as the database describes it, and the Arrow type it becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    /// Its name.
    pub name: String,
    /// The database's own type, e.g. `numeric(12,2)`.
    pub database_type: String,
    /// What a query returns it as.
    pub arrow_type: DataType,
    /// Whether it may hold NULL.
    pub nullable: bool,
}

/// A table or view.
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    /// Its schema (PostgreSQL) or database (MySQL).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Columns in table order.
    pub columns: Vec<ColumnInfo>,
    /// Primary-key columns in key order; empty when there is none.
    pub primary_key: Vec<String>,
    /// The planner's row estimate.
    pub estimated_rows: u64,
}

/// One open connection, of either kind.
pub enum Connection {
    /// PostgreSQL.
    Postgres(postgres::PgSession),
    /// MySQL or MariaDB.
    MySql(mysql::MySqlSession),
}

impl Connection {
    /// Connect to `url` (`postgres://…`), known to the job as `name`.
    ///
    /// # Errors
    /// A config error for an unsupported scheme, or the driver's error.
    pub fn open(name: &str, url: &str) -> Result<Connection> {
        let scheme = url.split("://").next().unwrap_or("");
        match scheme {
            "postgres" | "postgresql" => Ok(Connection::Postgres(postgres::PgSession::connect(
                name, url,
            )?)),
            "mysql" | "mariadb" => Ok(Connection::MySql(mysql::MySqlSession::connect(
                name,
                &url.replacen("mariadb://", "mysql://", 1),
            )?)),
            _ => Err(Error::config(format!(
                "connection `{name}`: unsupported URL scheme `{scheme}` (use postgres:// or mysql://)"
            ))),
        }
    }

    /// `postgres` or `mysql`.
    pub fn dialect(&self) -> Dialect {
        match self {
            Connection::Postgres(_) => Dialect::Postgres,
            Connection::MySql(_) => Dialect::MySql,
        }
    }

    /// Tables and views in `namespace`, or in every user schema.
    ///
    /// # Errors
    /// The database's error.
    pub fn tables(&mut self, namespace: Option<&str>) -> Result<Vec<TableInfo>> {
        match self {
            Connection::Postgres(c) => c.tables(namespace),
            Connection::MySql(c) => c.tables(namespace),
        }
    }

    /// One table; a config error naming it when it does not exist.
    ///
    /// # Errors
    /// As described.
    pub fn table(&mut self, name: &str) -> Result<TableInfo> {
        match self {
            Connection::Postgres(c) => c.table(name),
            Connection::MySql(c) => c.table(name),
        }
    }

    /// Stream a query's rows as Arrow batches.
    ///
    /// # Errors
    /// The database's error, classified.
    pub fn query(&mut self, statement: &str, params: &[Value], batch_rows: usize) -> Result<Rows> {
        match self {
            Connection::Postgres(c) => c.query(statement, params, batch_rows).map(Rows::Postgres),
            Connection::MySql(c) => c.query(statement, params, batch_rows).map(Rows::MySql),
        }
    }

    /// Run statements that return no rows; the rows affected.
    ///
    /// # Errors
    /// The database's error, classified.
    pub fn execute(&mut self, statement: &str, params: &[Value]) -> Result<u64> {
        match self {
            Connection::Postgres(c) => c.execute(statement, params),
            Connection::MySql(c) => c.execute(statement, params),
        }
    }

    /// Bulk-load a batch into `table`; the rows loaded.
    ///
    /// # Errors
    /// The database's error, classified; values that do not fit are data
    /// errors naming the column and row.
    pub fn load(&mut self, table: &str, batch: &RecordBatch) -> Result<u64> {
        match self {
            Connection::Postgres(c) => c.load(table, batch),
            Connection::MySql(c) => c.load(table, batch),
        }
    }
}

/// A query's rows.
pub enum Rows {
    /// From PostgreSQL.
    Postgres(postgres::PgRows),
    /// From MySQL or MariaDB.
    MySql(mysql::MyRows),
}

impl Rows {
    /// The schema of every batch.
    pub fn schema(&self) -> &SchemaRef {
        match self {
            Rows::Postgres(r) => r.schema(),
            Rows::MySql(r) => r.schema(),
        }
    }

    /// The next batch, or `None` after the last.
    ///
    /// # Errors
    /// The database's error, classified.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        match self {
            Rows::Postgres(r) => r.next_batch(),
            Rows::MySql(r) => r.next_batch(),
        }
    }
}
