//! `postgres` sink: load batches with binary COPY through the host's `sql`
//! capability (rows never enter the plugin).
//!
//! - `append`: each task loads in one transaction, committed with the task;
//! - `merge`: each task loads into a temporary table and upserts it on the
//!   key (`INSERT … ON CONFLICT … DO UPDATE`) when it commits; the last row
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
use sluice_sdk::{Batch, CommitInfo, Error, ErrorKind, Info, Result, Sink, Writer, export_sink};

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
}

impl TableName {
    fn new(config: &Config, stream: &str) -> TableName {
        let full = config.table.replace("{stream}", stream);
        match full.split_once('.') {
            Some((schema, name)) => TableName {
                schema: Some(schema.to_string()),
                name: name.to_string(),
            },
            None => TableName {
                schema: None,
                name: full,
            },
        }
    }

    fn with_suffix(&self, suffix: &str) -> TableName {
        TableName {
            schema: self.schema.clone(),
            name: format!("{}{suffix}", self.name),
        }
    }

    fn sql(&self) -> String {
        let q = |s: &str| Dialect::Postgres.quote(s);
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

/// The type of a new column for `field`, or a config error naming it.
fn column_type(field: &arrow_schema::Field) -> Result<String> {
    pg_type(field.data_type()).ok_or_else(|| {
        Error::config(format!(
            "column `{}`: no PostgreSQL type for {}",
            field.name(),
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
                        Dialect::Postgres.quote(f.name()),
                        column_type(f)?
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            if !key.is_empty() {
                let key: Vec<String> = key.iter().map(|k| Dialect::Postgres.quote(k)).collect();
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
                let ty = column_type(f)?;
                conn.execute(
                    &format!(
                        "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {ty}",
                        table.sql(),
                        Dialect::Postgres.quote(f.name())
                    ),
                    &[],
                )?;
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

/// The plugin.
pub struct Postgres;

const STAGING: &str = "__sluice_staging";

impl Sink for Postgres {
    type Config = Config;
    type Writer = TableWriter;

    fn info() -> Info {
        Info {
            name: "postgres",
            version: env!("CARGO_PKG_VERSION"),
            description: "PostgreSQL tables by binary COPY: append, replace, merge",
            capabilities: &["sql"],
        }
    }

    fn check(config: &Config) -> Result<()> {
        let conn = Connection::open(&config.connection)?;
        let table = TableName::new(config, "stream");
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
        let conn = Connection::open(&config.connection)?;
        let table = TableName::new(config, stream);
        let staging = table.with_suffix(STAGING);
        if fresh {
            conn.execute(&format!("DROP TABLE IF EXISTS {}", staging.sql()), &[])?;
        }
        if find(&conn, &table)?.is_some() {
            conn.execute(
                &format!(
                    "CREATE TABLE IF NOT EXISTS {} (LIKE {} INCLUDING ALL)",
                    staging.sql(),
                    table.sql()
                ),
                &[],
            )?;
        }
        Ok(())
    }

    fn finish_stream(config: &Config, stream: &str) -> Result<Vec<String>> {
        let table = TableName::new(config, stream);
        if config.mode != Mode::Replace {
            return Ok(vec![table.display()]);
        }
        let conn = Connection::open(&config.connection)?;
        let staging = table.with_suffix(STAGING);
        if find(&conn, &staging)?.is_none() {
            return Ok(Vec::new());
        }
        let old = table.with_suffix("__sluice_old");
        let q = |s: &str| Dialect::Postgres.quote(s);
        let mut swap = vec![
            "BEGIN".to_string(),
            format!("DROP TABLE IF EXISTS {}", old.sql()),
        ];
        if find(&conn, &table)?.is_some() {
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
        if let Err(e) = conn.execute(&swap.join("; "), &[]) {
            let _ = conn.execute("ROLLBACK", &[]);
            return Err(e);
        }
        Ok(vec![table.display()])
    }

    fn open(config: Config, stream: &str, schema: SchemaRef, _task: &str) -> Result<TableWriter> {
        let conn = Connection::open(&config.connection)?;
        let table = TableName::new(&config, stream);
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
                (String::from("pg_temp.sluice_merge"), Some(key))
            }
        };
        conn.execute("BEGIN", &[])?;
        if merge.is_some() {
            conn.execute(
                &format!(
                    "CREATE TEMP TABLE sluice_merge (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP",
                    table.sql()
                ),
                &[],
            )?;
        }
        Ok(TableWriter {
            conn,
            table,
            load_into,
            columns,
            merge,
            rows: 0,
            open: true,
        })
    }
}

/// Loads one task's batches in one transaction.
pub struct TableWriter {
    conn: Connection,
    table: TableName,
    load_into: String,
    columns: Vec<String>,
    /// Merge: the key columns.
    merge: Option<Vec<String>>,
    rows: u64,
    open: bool,
}

impl TableWriter {
    fn upsert(&self, key: &[String]) -> String {
        let q = |s: &str| Dialect::Postgres.quote(s);
        let columns: Vec<String> = self.columns.iter().map(|c| q(c)).collect();
        let keys: Vec<String> = key.iter().map(|k| q(k)).collect();
        let updates: Vec<String> = self
            .columns
            .iter()
            .filter(|c| !key.contains(c))
            .map(|c| format!("{0} = EXCLUDED.{0}", q(c)))
            .collect();
        let action = if updates.is_empty() {
            "DO NOTHING".to_string()
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        };
        // The last row loaded for a key wins (ctid order is load order in
        // a fresh temporary table).
        format!(
            "INSERT INTO {table} ({cols}) SELECT DISTINCT ON ({keys}) {cols} FROM pg_temp.sluice_merge ORDER BY {keys}, ctid DESC ON CONFLICT ({keys}) {action}",
            table = self.table.sql(),
            cols = columns.join(", "),
            keys = keys.join(", "),
        )
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
        Ok(CommitInfo {
            rows: self.rows,
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

export_sink!(Postgres);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_quote_and_take_the_stream() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "connection": "w", "table": "raw.{stream}"
        }))
        .unwrap();
        let t = TableName::new(&config, "Orders");
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
