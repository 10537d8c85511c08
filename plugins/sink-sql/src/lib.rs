//! Database sinks (`postgres`, `mysql`): load batches through the host's
//! `sql` capability (binary COPY on PostgreSQL, multi-row `INSERT` on
//! MySQL; rows never enter the plugin). This crate is the shared
//! implementation; each plugin is a thin crate naming its [`Flavor`].
//!
//! - `append`: each task loads in one transaction, committed with the task;
//! - `merge`: each task loads into a temporary table and upserts it on the
//!   key (`INSERT … ON CONFLICT … DO UPDATE`, or `ON DUPLICATE KEY UPDATE`)
//!   when it commits; the last row
//!   for a key wins;
//! - `replace`: tasks load into a staging table; when every task of the
//!   stream committed, staging is swapped in for the table in one
//!   transaction.
//!
//! A missing table is created from the data's schema; a column the data
//! has and the table lacks is added (nullable); a column whose type cannot
//! take the data's is refused before anything loads.

use arrow_schema::{DataType, SchemaRef};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_sdk::sql::{Column, Connection, Dialect, Table};
use sluice_sdk::{Batch, CommitInfo, Error, ErrorKind, Info, Result, Sink, Writer};

/// How rows reach the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Insert every row.
    #[default]
    Append,
    /// Replace the table's contents with this run's rows.
    Replace,
    /// Insert new keys, update existing ones.
    Merge,
}

/// The sink's config.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The connection to write to: a name under the job's `connections:`,
    /// granted with `grants: {sql: [name]}`.
    pub connection: String,
    /// The table (`orders`, `analytics.orders`); `{stream}` is the stream's
    /// name.
    pub table: String,
    /// `append` (default), `replace` or `merge`.
    #[serde(default)]
    pub mode: Mode,
    /// Merge: the columns that identify a row (default: the table's
    /// primary key).
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// Create the table from the data's schema when it is missing
    /// (default true).
    #[serde(default = "yes")]
    pub create: bool,
}

fn yes() -> bool {
    true
}

/// A table name, split so it can be quoted and suffixed.
#[derive(Debug, Clone)]
struct TableName {
    schema: Option<String>,
    name: String,
    dialect: Dialect,
}

impl TableName {
    fn new(config: &Config, stream: &str, dialect: Dialect) -> TableName {
        let full = config.table.replace("{stream}", stream);
        match full.split_once('.') {
            Some((schema, name)) => TableName {
                schema: Some(schema.to_string()),
                name: name.to_string(),
                dialect,
            },
            None => TableName {
                schema: None,
                name: full,
                dialect,
            },
        }
    }

    fn with_suffix(&self, suffix: &str) -> TableName {
        TableName {
            schema: self.schema.clone(),
            name: format!("{}{suffix}", self.name),
            dialect: self.dialect,
        }
    }

    fn sql(&self) -> String {
        let q = |s: &str| self.dialect.quote(s);
        match &self.schema {
            Some(schema) => format!("{}.{}", q(schema), q(&self.name)),
            None => q(&self.name),
        }
    }

    fn display(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// The table, if it exists.
fn find(conn: &Connection, table: &TableName) -> Result<Option<Table>> {
    match conn.table(&table.sql()) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind == ErrorKind::Config && e.message.contains("does not exist") => Ok(None),
        Err(e) => Err(e),
    }
}

/// PostgreSQL's type for an Arrow type, for new tables and columns.
fn pg_type(dt: &DataType) -> Option<String> {
    Some(match dt {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::UInt64 => "numeric(20,0)".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal128(p, s) if *s >= 0 => format!("numeric({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::Interval(_) => "interval".into(),
        DataType::List(f) | DataType::LargeList(f) => {
            let inner = pg_type(f.data_type())?;
            if inner.ends_with("[]") {
                return None;
            }
            format!("{inner}[]")
        }
        _ => return None,
    })
}

/// MySQL's type for an Arrow type. Key columns get `VARCHAR(255)` for
/// text, since MySQL cannot index a `TEXT` column whole.
fn mysql_type(dt: &DataType, key: bool) -> Option<String> {
    Some(match dt {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 | DataType::UInt8 => "SMALLINT".into(),
        DataType::Int32 | DataType::UInt16 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt32 => "INT UNSIGNED".into(),
        DataType::UInt64 => "BIGINT UNSIGNED".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) if *s >= 0 => format!("DECIMAL({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View if key => "VARCHAR(255)".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "LONGTEXT".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "LONGBLOB".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME(6)".into(),
        // UTC wall-clock time: the host's session runs in UTC.
        DataType::Timestamp(..) => "DATETIME(6)".into(),
        _ => return None,
    })
}

/// The type of a new column for `field`, or a config error naming it.
fn column_type(dialect: Dialect, field: &arrow_schema::Field, key: bool) -> Result<String> {
    let ty = match dialect {
        Dialect::Postgres => pg_type(field.data_type()),
        Dialect::MySql => mysql_type(field.data_type(), key),
    };
    ty.ok_or_else(|| {
        Error::config(format!(
            "column `{}`: no {} type for {}",
            field.name(),
            dialect.product(),
            field.data_type()
        ))
    })
}

fn is_int(dt: &DataType) -> bool {
    dt.is_integer()
}

/// Whether a column of `to`'s type can take values of `from` (overflowing
/// values still fail when they load, naming the row).
fn compatible(from: &DataType, to: &DataType) -> bool {
    use DataType as T;
    match (from, to) {
        (a, b) if a == b => true,
        (_, T::Utf8) => !matches!(from, T::Binary | T::LargeBinary | T::List(_) | T::Struct(_)),
        (a, T::Int16 | T::Int32 | T::Int64 | T::UInt32) => is_int(a),
        (a, T::Float32 | T::Float64) => {
            is_int(a) || a.is_floating() || matches!(a, T::Decimal128(..))
        }
        (a, T::Decimal128(..)) => is_int(a) || matches!(a, T::Decimal128(..) | T::Utf8),
        (T::Date32 | T::Date64 | T::Utf8, T::Date32) => true,
        (T::Timestamp(..) | T::Date32 | T::Date64 | T::Utf8, T::Timestamp(..)) => true,
        (T::Time32(_) | T::Time64(_), T::Time64(_)) => true,
        (T::Binary | T::LargeBinary | T::FixedSizeBinary(_), T::Binary) => true,
        (T::Interval(_) | T::Duration(_), T::Interval(_)) => true,
        (T::List(a) | T::LargeList(a), T::List(b)) => compatible(a.data_type(), b.data_type()),
        _ => false,
    }
}

/// Make `table` ready for batches of `schema`: create it, add missing
/// columns, refuse columns that cannot take the data.
fn prepare(
    conn: &Connection,
    table: &TableName,
    schema: &SchemaRef,
    key: &[String],
    create: bool,
) -> Result<Table> {
    let dialect = conn.dialect();
    let existing = match find(conn, table)? {
        Some(t) => t,
        None if !create => {
            return Err(Error::config(format!(
                "table `{}` does not exist and `create` is false",
                table.display()
            )));
        }
        None => {
            let mut columns = schema
                .fields()
                .iter()
                .map(|f| {
                    Ok(format!(
                        "{} {}",
                        dialect.quote(f.name()),
                        column_type(dialect, f, key.contains(f.name()))?
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            if !key.is_empty() {
                let key: Vec<String> = key.iter().map(|k| dialect.quote(k)).collect();
                columns.push(format!("PRIMARY KEY ({})", key.join(", ")));
            }
            let created = conn.execute(
                &format!(
                    "CREATE TABLE IF NOT EXISTS {} ({})",
                    table.sql(),
                    columns.join(", ")
                ),
                &[],
            );
            // Parallel tasks race to create it; losing the race is fine.
            if let Err(e) = created
                && find(conn, table)?.is_none()
            {
                return Err(e);
            }
            sluice_sdk::log::info(&format!("created table {}", table.display()));
            find(conn, table)?.ok_or_else(|| {
                Error::internal(format!(
                    "table `{}` vanished after creation",
                    table.display()
                ))
            })?
        }
    };
    let mut added = false;
    for f in schema.fields() {
        match existing.column(f.name()) {
            Some(Column {
                arrow_type,
                database_type,
                ..
            }) => {
                if !compatible(f.data_type(), arrow_type) {
                    return Err(Error::config(format!(
                        "column `{}` of `{}` is {database_type}, which cannot take the data's {}; change the table or cast the column with a filter",
                        f.name(),
                        table.display(),
                        f.data_type()
                    )));
                }
            }
            None => {
                let ty = column_type(dialect, f, false)?;
                // Plain ADD COLUMN (MySQL 8 has no IF NOT EXISTS); a
                // parallel task adding it first is not an error.
                let added_here = conn.execute(
                    &format!(
                        "ALTER TABLE {} ADD COLUMN {} {ty}",
                        table.sql(),
                        dialect.quote(f.name())
                    ),
                    &[],
                );
                if let Err(e) = added_here
                    && find(conn, table)?.is_none_or(|t| t.column(f.name()).is_none())
                {
                    return Err(e);
                }
                sluice_sdk::log::info(&format!(
                    "added column {} {ty} to {}",
                    f.name(),
                    table.display()
                ));
                added = true;
            }
        }
    }
    if added {
        return find(conn, table)?
            .ok_or_else(|| Error::internal(format!("table `{}` vanished", table.display())));
    }
    Ok(existing)
}

pub use sluice_sdk::sql::Flavor;

/// A database sink of one flavor.
pub struct SqlSink<F: Flavor>(std::marker::PhantomData<F>);

const STAGING: &str = "__sluice_staging";

/// The temporary table a merging task loads into.
fn merge_table(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "pg_temp.sluice_merge",
        Dialect::MySql => "sluice_merge",
    }
}

impl<F: Flavor> Sink for SqlSink<F> {
    type Config = Config;
    type Writer = TableWriter;

    fn info() -> Info {
        Info {
            name: F::NAME,
            version: env!("CARGO_PKG_VERSION"),
            description: F::DESCRIPTION,
            capabilities: &["sql"],
        }
    }

    fn check(config: &Config) -> Result<()> {
        let conn = Connection::open_for::<F>(&config.connection)?;
        let table = TableName::new(config, "stream", conn.dialect());
        if config.table.contains("{stream}") {
            return Ok(());
        }
        match find(&conn, &table)? {
            Some(t)
                if config.mode == Mode::Merge
                    && config.key.is_none()
                    && t.primary_key.is_empty() =>
            {
                Err(Error::config(format!(
                    "mode merge: table `{}` has no primary key; set `key`",
                    table.display()
                )))
            }
            Some(_) => Ok(()),
            None if config.create => Ok(()),
            None => Err(Error::config(format!(
                "table `{}` does not exist and `create` is false",
                table.display()
            ))),
        }
    }

    fn begin_stream(config: &Config, stream: &str, fresh: bool) -> Result<()> {
        if config.mode != Mode::Replace {
            return Ok(());
        }
        let conn = Connection::open_for::<F>(&config.connection)?;
        let table = TableName::new(config, stream, conn.dialect());
        let staging = table.with_suffix(STAGING);
        if fresh {
            conn.execute(&format!("DROP TABLE IF EXISTS {}", staging.sql()), &[])?;
        }
        if find(&conn, &table)?.is_some() {
            let like = match conn.dialect() {
                Dialect::Postgres => format!("(LIKE {} INCLUDING ALL)", table.sql()),
                Dialect::MySql => format!("LIKE {}", table.sql()),
            };
            conn.execute(
                &format!("CREATE TABLE IF NOT EXISTS {} {like}", staging.sql()),
                &[],
            )?;
        }
        Ok(())
    }

    fn finish_stream(config: &Config, stream: &str) -> Result<Vec<String>> {
        let conn = Connection::open_for::<F>(&config.connection)?;
        let dialect = conn.dialect();
        let table = TableName::new(config, stream, dialect);
        if config.mode != Mode::Replace {
            return Ok(vec![table.display()]);
        }
        let staging = table.with_suffix(STAGING);
        if find(&conn, &staging)?.is_none() {
            return Ok(Vec::new());
        }
        let old = table.with_suffix("__sluice_old");
        let exists = find(&conn, &table)?.is_some();
        let swap = match dialect {
            Dialect::Postgres => {
                let q = |s: &str| dialect.quote(s);
                let mut swap = vec![
                    "BEGIN".to_string(),
                    format!("DROP TABLE IF EXISTS {}", old.sql()),
                ];
                if exists {
                    swap.push(format!(
                        "ALTER TABLE {} RENAME TO {}",
                        table.sql(),
                        q(&old.name)
                    ));
                }
                swap.push(format!(
                    "ALTER TABLE {} RENAME TO {}",
                    staging.sql(),
                    q(&table.name)
                ));
                swap.push(format!("DROP TABLE IF EXISTS {}", old.sql()));
                swap.push("COMMIT".into());
                swap.join("; ")
            }
            // One RENAME TABLE swaps both names atomically.
            Dialect::MySql if exists => format!(
                "DROP TABLE IF EXISTS {old}; RENAME TABLE {t} TO {old}, {s} TO {t}; DROP TABLE {old}",
                old = old.sql(),
                t = table.sql(),
                s = staging.sql()
            ),
            Dialect::MySql => format!("RENAME TABLE {} TO {}", staging.sql(), table.sql()),
        };
        if let Err(e) = conn.execute(&swap, &[]) {
            if dialect == Dialect::Postgres {
                let _ = conn.execute("ROLLBACK", &[]);
            }
            return Err(e);
        }
        Ok(vec![table.display()])
    }

    fn open(config: Config, stream: &str, schema: SchemaRef, _task: &str) -> Result<TableWriter> {
        let conn = Connection::open_for::<F>(&config.connection)?;
        let dialect = conn.dialect();
        let table = TableName::new(&config, stream, dialect);
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let (load_into, merge) = match config.mode {
            Mode::Append => {
                prepare(&conn, &table, &schema, &[], config.create)?;
                (table.sql(), None)
            }
            Mode::Replace => {
                let staging = table.with_suffix(STAGING);
                prepare(&conn, &staging, &schema, &[], true)?;
                (staging.sql(), None)
            }
            Mode::Merge => {
                // The key: configured, or the source's primary key (the
                // host passes it in the schema's metadata), or the table's.
                let key = config.key.clone().unwrap_or_else(|| {
                    schema
                        .metadata()
                        .get("sluice.primary_key")
                        .and_then(|k| serde_json::from_str(k).ok())
                        .unwrap_or_default()
                });
                let t = prepare(&conn, &table, &schema, &key, config.create)?;
                let key = if key.is_empty() {
                    t.primary_key.clone()
                } else {
                    key
                };
                if key.is_empty() {
                    return Err(Error::config(format!(
                        "mode merge: table `{}` has no primary key; set `key`",
                        table.display()
                    )));
                }
                if let Some(k) = key.iter().find(|k| !columns.contains(k)) {
                    return Err(Error::config(format!(
                        "mode merge: the data has no key column `{k}`"
                    )));
                }
                (merge_table(dialect).to_string(), Some(key))
            }
        };
        let mut writer = TableWriter {
            conn,
            dialect,
            table,
            load_into,
            columns,
            merge,
            rows: 0,
            open: false,
        };
        writer.begin()?;
        Ok(writer)
    }
}

/// Loads one task's batches in one transaction.
pub struct TableWriter {
    conn: Connection,
    dialect: Dialect,
    table: TableName,
    load_into: String,
    columns: Vec<String>,
    /// Merge: the key columns.
    merge: Option<Vec<String>>,
    rows: u64,
    open: bool,
}

impl TableWriter {
    /// Start the transaction the next batches load in (and, to merge, the
    /// temporary table they load into).
    fn begin(&mut self) -> Result<()> {
        self.conn.execute("BEGIN", &[])?;
        self.open = true;
        if self.merge.is_some() {
            let create = match self.dialect {
                Dialect::Postgres => format!(
                    "CREATE TEMP TABLE sluice_merge (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP",
                    self.table.sql()
                ),
                Dialect::MySql => format!(
                    "DROP TEMPORARY TABLE IF EXISTS sluice_merge; CREATE TEMPORARY TABLE sluice_merge LIKE {}",
                    self.table.sql()
                ),
            };
            self.conn.execute(&create, &[])?;
        }
        Ok(())
    }

    fn upsert(&self, key: &[String]) -> String {
        let q = |s: &str| self.dialect.quote(s);
        let columns: Vec<String> = self.columns.iter().map(|c| q(c)).collect();
        let keys: Vec<String> = key.iter().map(|k| q(k)).collect();
        let others: Vec<&String> = self.columns.iter().filter(|c| !key.contains(c)).collect();
        let (table, cols) = (self.table.sql(), columns.join(", "));
        match self.dialect {
            Dialect::Postgres => {
                let action = if others.is_empty() {
                    "DO NOTHING".to_string()
                } else {
                    let set: Vec<String> = others
                        .iter()
                        .map(|c| format!("{0} = EXCLUDED.{0}", q(c)))
                        .collect();
                    format!("DO UPDATE SET {}", set.join(", "))
                };
                // The last row loaded for a key wins (ctid order is load
                // order in a fresh temporary table).
                format!(
                    "INSERT INTO {table} ({cols}) SELECT DISTINCT ON ({keys}) {cols} FROM pg_temp.sluice_merge ORDER BY {keys}, ctid DESC ON CONFLICT ({keys}) {action}",
                    keys = keys.join(", "),
                )
            }
            Dialect::MySql => {
                // Rows apply in load order, so the last for a key wins.
                let set: Vec<String> = if others.is_empty() {
                    keys.iter().map(|k| format!("{k} = {k}")).collect()
                } else {
                    others
                        .iter()
                        .map(|c| format!("{0} = VALUES({0})", q(c)))
                        .collect()
                };
                format!(
                    "INSERT INTO {table} ({cols}) SELECT {cols} FROM sluice_merge ON DUPLICATE KEY UPDATE {}",
                    set.join(", ")
                )
            }
        }
    }
}

impl Writer for TableWriter {
    fn write(&mut self, batch: Batch) -> Result<()> {
        self.rows += self.conn.load(&self.load_into, &batch)?;
        Ok(())
    }

    fn commit(&mut self) -> Result<CommitInfo> {
        if let Some(key) = &self.merge {
            self.conn.execute(&self.upsert(key), &[])?;
        }
        self.conn.execute("COMMIT", &[])?;
        self.open = false;
        // Ready for more: the host may commit again later in the task (a
        // transaction left open and empty at the end is simply dropped).
        self.begin()?;
        Ok(CommitInfo {
            rows: std::mem::take(&mut self.rows),
            bytes: 0,
            outputs: vec![self.table.display()],
        })
    }

    fn abort(&mut self) {
        if self.open {
            let _ = self.conn.execute("ROLLBACK", &[]);
            self.open = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_quote_and_take_the_stream() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "connection": "w", "table": "raw.{stream}"
        }))
        .unwrap();
        let t = TableName::new(&config, "Orders", Dialect::Postgres);
        assert_eq!(t.sql(), "\"raw\".\"Orders\"");
        assert_eq!(
            t.with_suffix(STAGING).sql(),
            "\"raw\".\"Orders__sluice_staging\""
        );
    }

    #[test]
    fn compatible_types() {
        assert!(compatible(&DataType::Int32, &DataType::Int64));
        assert!(compatible(&DataType::Int64, &DataType::Utf8));
        assert!(!compatible(&DataType::Utf8, &DataType::Int64));
        assert!(!compatible(&DataType::Float64, &DataType::Int32));
        assert!(compatible(
            &DataType::Decimal128(10, 2),
            &DataType::Decimal128(12, 2)
        ));
    }
}
