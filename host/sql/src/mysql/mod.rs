//! MySQL and MariaDB: catalog queries from `information_schema`, streaming
//! reads converted to Arrow, and bulk loads as multi-row `INSERT`s.
//!
//! Rows arrive in the text protocol; each column is gathered as text and
//! cast to its Arrow type in one vectorised step per batch. The session
//! runs in UTC, so `TIMESTAMP` values are instants.

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryBuilder, RecordBatch, StringBuilder};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use futures_util::StreamExt;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::{Column, Connection as _, Executor, Row, TypeInfo, ValueRef};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::params::{Dialect, Value, inline};
use crate::{ColumnInfo, TableInfo, runtime};

/// The Arrow type of a MySQL column type, as `describe` names it.
///
/// `DECIMAL` here is exact text: the protocol's column description does not
/// carry the scale (the declared type, when it can be read, gives
/// `decimal(p,s)`; see [`declared_type`]).
pub fn arrow_type(type_name: &str) -> DataType {
    match type_name {
        "BOOLEAN" => DataType::Boolean,
        "TINYINT" => DataType::Int8,
        "SMALLINT" | "TINYINT UNSIGNED" | "YEAR" => DataType::Int16,
        "INT" | "MEDIUMINT" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" => DataType::Int32,
        "BIGINT" | "INT UNSIGNED" => DataType::Int64,
        "BIGINT UNSIGNED" => DataType::UInt64,
        "FLOAT" => DataType::Float32,
        "DOUBLE" => DataType::Float64,
        "DATE" => DataType::Date32,
        "DATETIME" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "TIMESTAMP" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" | "BIT"
        | "GEOMETRY" => DataType::Binary,
        _ => DataType::Utf8,
    }
}

/// The same mapping from `information_schema.columns.data_type` (lower
/// case, signedness in `column_type`).
fn catalog_type(data_type: &str, column_type: &str) -> DataType {
    if column_type.starts_with("tinyint(1)") {
        return DataType::Boolean;
    }
    if let Some(t) = declared_type(column_type, true) {
        return t;
    }
    let name = data_type.to_ascii_uppercase();
    if column_type.contains("unsigned") {
        arrow_type(&format!("{name} UNSIGNED"))
    } else {
        arrow_type(&name)
    }
}

/// The Arrow type for a declared column type (`decimal(10,2)`,
/// `longtext`), where it says more than the protocol: decimals with their
/// scale, and text whatever its collation. `None`: use the protocol's.
fn declared_type(column_type: &str, collated: bool) -> Option<DataType> {
    if let Some(args) = column_type
        .strip_prefix("decimal(")
        .and_then(|r| r.split(')').next())
    {
        let (p, s) = args.split_once(',').unwrap_or((args, "0"));
        let (p, s): (u8, i8) = (p.trim().parse().ok()?, s.trim().parse().ok()?);
        return (1..=38).contains(&p).then_some(DataType::Decimal128(p, s));
    }
    let texty = [
        "char",
        "varchar",
        "tinytext",
        "text",
        "mediumtext",
        "longtext",
        "json",
    ]
    .iter()
    .any(|t| column_type == *t || column_type.starts_with(&format!("{t}(")));
    (texty && collated).then_some(DataType::Utf8)
}

/// One open connection.
pub struct MySqlSession {
    name: String,
    options: MySqlConnectOptions,
    conn: MySqlConnection,
}

async fn connect(options: &MySqlConnectOptions) -> Result<MySqlConnection, sqlx::Error> {
    let mut conn = MySqlConnection::connect_with(options).await?;
    sqlx::raw_sql("SET time_zone = '+00:00'")
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

impl MySqlSession {
    /// Connect to `url`, the connection the job calls `name`.
    ///
    /// # Errors
    /// Auth, config or transient errors naming the connection.
    pub fn connect(name: &str, url: &str) -> Result<MySqlSession> {
        let options: MySqlConnectOptions = url
            .parse()
            .map_err(|e| Error::config(format!("connection `{name}`: not a MySQL URL: {e}")))?;
        let conn = runtime()
            .block_on(connect(&options))
            .map_err(|e| Error::from_sqlx(&format!("connection `{name}`"), e))?;
        Ok(MySqlSession {
            name: name.to_string(),
            options,
            conn,
        })
    }

    fn context(&self, what: &str) -> String {
        format!("connection `{}`: {what}", self.name)
    }

    /// Tables and views in `namespace` (the connection's database when
    /// `None`).
    ///
    /// # Errors
    /// A database error.
    pub fn tables(&mut self, namespace: Option<&str>) -> Result<Vec<TableInfo>> {
        self.describe_tables(namespace, None)
    }

    /// One table: `name` or `database.name`.
    ///
    /// # Errors
    /// A config error naming the table when there is none.
    pub fn table(&mut self, name: &str) -> Result<TableInfo> {
        let unquote = |s: &str| s.trim_matches('`').to_string();
        let (namespace, table) = match name.split_once('.') {
            Some((db, t)) => (Some(unquote(db)), unquote(t)),
            None => (None, unquote(name)),
        };
        self.describe_tables(namespace.as_deref(), Some(&table))?
            .pop()
            .ok_or_else(|| {
                Error::config(self.context(&format!(
                    "table `{name}` does not exist (or is not visible to this user)"
                )))
            })
    }

    fn describe_tables(
        &mut self,
        namespace: Option<&str>,
        table: Option<&str>,
    ) -> Result<Vec<TableInfo>> {
        let context = self.context("reading the catalog");
        let conn = &mut self.conn;
        let (tables, columns, keys) = runtime()
            .block_on(async {
                let tables = sqlx::query(
                    "SELECT CAST(table_schema AS CHAR), CAST(table_name AS CHAR), CAST(COALESCE(table_rows, 0) AS SIGNED)
                     FROM information_schema.tables
                     WHERE table_schema = COALESCE(?, DATABASE()) AND (? IS NULL OR table_name = ?)
                     ORDER BY 1, 2",
                )
                .bind(namespace)
                .bind(table)
                .bind(table)
                .fetch_all(&mut *conn)
                .await?;
                let columns = sqlx::query(
                    "SELECT CAST(table_name AS CHAR), CAST(column_name AS CHAR), CAST(data_type AS CHAR),
                            CAST(column_type AS CHAR), CAST(is_nullable AS CHAR)
                     FROM information_schema.columns
                     WHERE table_schema = COALESCE(?, DATABASE()) AND (? IS NULL OR table_name = ?)
                     ORDER BY table_name, ordinal_position",
                )
                .bind(namespace)
                .bind(table)
                .bind(table)
                .fetch_all(&mut *conn)
                .await?;
                let keys = sqlx::query(
                    "SELECT CAST(table_name AS CHAR), CAST(column_name AS CHAR)
                     FROM information_schema.key_column_usage
                     WHERE table_schema = COALESCE(?, DATABASE()) AND constraint_name = 'PRIMARY'
                       AND (? IS NULL OR table_name = ?)
                     ORDER BY table_name, ordinal_position",
                )
                .bind(namespace)
                .bind(table)
                .bind(table)
                .fetch_all(&mut *conn)
                .await?;
                Ok::<_, sqlx::Error>((tables, columns, keys))
            })
            .map_err(|e| Error::from_sqlx(&context, e))?;
        Ok(tables
            .iter()
            .map(|t| {
                let name: String = t.get(1);
                TableInfo {
                    namespace: t.get(0),
                    columns: columns
                        .iter()
                        .filter(|c| c.get::<String, _>(0) == name)
                        .map(|c| ColumnInfo {
                            name: c.get(1),
                            database_type: c.get(3),
                            arrow_type: catalog_type(
                                &c.get::<String, _>(2),
                                &c.get::<String, _>(3),
                            ),
                            nullable: c.get::<String, _>(4) == "YES",
                        })
                        .collect(),
                    primary_key: keys
                        .iter()
                        .filter(|k| k.get::<String, _>(0) == name)
                        .map(|k| k.get(1))
                        .collect(),
                    estimated_rows: t.get::<i64, _>(2).max(0) as u64,
                    name,
                }
            })
            .collect())
    }

    /// Stream a query's rows as batches of up to `batch_rows` rows, read on
    /// a second connection.
    ///
    /// # Errors
    /// Config errors for a bad query, transient ones for connection trouble.
    pub fn query(
        &mut self,
        statement: &str,
        params: &[Value],
        batch_rows: usize,
    ) -> Result<MyRows> {
        let statement = inline(statement, params, Dialect::MySql)?;
        let context = self.context("preparing the query");
        let described = runtime()
            .block_on(self.conn.describe(&statement))
            .map_err(|e| Error::from_sqlx(&context, e))?;
        // The protocol's column description has no decimal scale and flags
        // binary-collated text (MariaDB's JSON) as binary; the columns of
        // an empty temporary copy of the result say both.
        let declared = self.declared_types(&statement);
        let fields: Vec<Field> = described
            .columns()
            .iter()
            .map(|c| {
                let ty = declared
                    .get(c.name())
                    .cloned()
                    .unwrap_or_else(|| arrow_type(c.type_info().name()));
                Field::new(c.name(), ty, true)
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let (tx, rx) = mpsc::channel::<Result<Option<RecordBatch>>>(2);
        let options = self.options.clone();
        let context = self.context("reading rows");
        let batch_schema = schema.clone();
        let batch_rows = batch_rows.max(1);
        // The driver's row stream is not `Send` for every lifetime it
        // borrows, so it runs on a thread of its own with a small runtime.
        std::thread::Builder::new()
            .name("sluice-mysql-rows".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let result = match rt {
                    Ok(rt) => rt.block_on(async {
                        stream_rows(&options, &statement, batch_schema, batch_rows, &tx).await
                    }),
                    Err(e) => Err(Error::transient(format!("starting a runtime: {e}"))),
                };
                if let Err(e) = result {
                    let _ = tx.blocking_send(Err(e.in_context(&context)));
                }
            })
            .map_err(|e| Error::transient(format!("starting a reader thread: {e}")))?;
        Ok(MyRows {
            schema,
            rx,
            done: false,
        })
    }

    /// The declared types of a query's columns, from `SHOW FULL COLUMNS` of
    /// an empty temporary table made from it. Empty when that is not
    /// possible (no `CREATE TEMPORARY TABLES` privilege): the protocol's
    /// types are used then.
    fn declared_types(&mut self, statement: &str) -> std::collections::HashMap<String, DataType> {
        let conn = &mut self.conn;
        let found = runtime().block_on(async {
            sqlx::raw_sql(&format!(
                "DROP TEMPORARY TABLE IF EXISTS sluice_probe; CREATE TEMPORARY TABLE sluice_probe AS SELECT * FROM ({statement}) AS q LIMIT 0"
            ))
            .execute(&mut *conn)
            .await?;
            let rows = sqlx::raw_sql("SHOW FULL COLUMNS FROM sluice_probe")
                .fetch_all(&mut *conn)
                .await;
            let _ = sqlx::raw_sql("DROP TEMPORARY TABLE IF EXISTS sluice_probe")
                .execute(&mut *conn)
                .await;
            rows
        });
        let Ok(rows) = found else {
            return Default::default();
        };
        let text = |r: &MySqlRow, i: usize| -> Option<String> {
            let v = r.try_get_raw(i).ok()?;
            if v.is_null() {
                return None;
            }
            <&str as sqlx::Decode<sqlx::MySql>>::decode(v)
                .ok()
                .map(str::to_string)
        };
        rows.iter()
            .filter_map(|r| {
                let (name, column_type) = (text(r, 0)?, text(r, 1)?.to_ascii_lowercase());
                let collated = text(r, 2).is_some();
                Some((name, declared_type(&column_type, collated)?))
            })
            .collect()
    }

    /// Run statements that return no rows; the rows affected.
    ///
    /// # Errors
    /// A database error, classified.
    pub fn execute(&mut self, statement: &str, params: &[Value]) -> Result<u64> {
        let statement = inline(statement, params, Dialect::MySql)?;
        let context = self.context("running a statement");
        runtime()
            .block_on(sqlx::raw_sql(&statement).execute(&mut self.conn))
            .map(|r| r.rows_affected())
            .map_err(|e| Error::from_sqlx(&context, e))
    }

    /// Load `batch` into `table` with multi-row `INSERT`s (about 4 MB each).
    ///
    /// # Errors
    /// The database's error, classified.
    pub fn load(&mut self, table: &str, batch: &RecordBatch) -> Result<u64> {
        let schema = batch.schema();
        let columns = schema
            .fields()
            .iter()
            .map(|f| Dialect::MySql.quote(f.name()))
            .collect::<Vec<_>>()
            .join(", ");
        let head = format!("INSERT INTO {table} ({columns}) VALUES ");
        let arrays = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(a, f)| {
                writable(a).map_err(|e| Error::data(format!("column `{}`: {e}", f.name())))
            })
            .collect::<Result<Vec<_>>>()?;
        let literals = arrays
            .iter()
            .zip(schema.fields())
            .map(|(a, f)| {
                Literals::new(a).map_err(|e| Error::data(format!("column `{}`: {e}", f.name())))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut loaded = 0;
        let mut sql = String::with_capacity(4 << 20);
        let context = self.context(&format!("loading into `{table}`"));
        for row in 0..batch.num_rows() {
            sql.push_str(if sql.is_empty() { &head } else { ", " });
            sql.push('(');
            for (i, l) in literals.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                l.write(row, &mut sql);
            }
            sql.push(')');
            if sql.len() >= 4 << 20 || row + 1 == batch.num_rows() {
                loaded += runtime()
                    .block_on(sqlx::raw_sql(&sql).execute(&mut self.conn))
                    .map_err(|e| Error::from_sqlx(&context, e))?
                    .rows_affected();
                sql.clear();
            }
        }
        Ok(loaded)
    }
}

/// Formatting for literals: Arrow's defaults (ISO dates and times).
static FORMAT: FormatOptions<'static> = FormatOptions::new();

/// A column's values as SQL literals.
enum Literals<'a> {
    Numbers(ArrayFormatter<'a>, &'a ArrayRef),
    Text(ArrayFormatter<'a>, &'a ArrayRef),
    Bytes(&'a arrow::array::BinaryArray),
}

/// What a column is written from: zoned timestamps become UTC wall-clock
/// time (the session runs in UTC).
fn writable(array: &ArrayRef) -> Result<ArrayRef, String> {
    match array.data_type() {
        DataType::Timestamp(unit, Some(_)) => {
            arrow::compute::cast(array, &DataType::Timestamp(*unit, None))
                .map_err(|e| e.to_string())
        }
        _ => Ok(array.clone()),
    }
}

impl<'a> Literals<'a> {
    fn new(array: &'a ArrayRef) -> Result<Literals<'a>, String> {
        let formatter =
            || ArrayFormatter::try_new(array.as_ref(), &FORMAT).map_err(|e| e.to_string());
        Ok(match array.data_type() {
            d if d.is_numeric() || *d == DataType::Boolean => {
                Literals::Numbers(formatter()?, array)
            }
            DataType::Binary => Literals::Bytes(
                array
                    .as_any()
                    .downcast_ref::<arrow::array::BinaryArray>()
                    .expect("binary"),
            ),
            _ => Literals::Text(formatter()?, array),
        })
    }

    fn write(&self, row: usize, sql: &mut String) {
        use arrow::array::Array;
        match self {
            Literals::Numbers(f, a) if !a.is_null(row) => {
                let v = f.value(row).to_string();
                sql.push_str(match v.as_str() {
                    "true" => "1",
                    "false" => "0",
                    other => other,
                });
            }
            Literals::Text(f, a) if !a.is_null(row) => {
                sql.push('\'');
                for c in f.value(row).to_string().chars() {
                    match c {
                        '\'' => sql.push_str("''"),
                        '\\' => sql.push_str("\\\\"),
                        c => sql.push(c),
                    }
                }
                sql.push('\'');
            }
            Literals::Bytes(a) if !a.is_null(row) => {
                sql.push_str("X'");
                for b in a.value(row) {
                    sql.push_str(&format!("{b:02x}"));
                }
                sql.push('\'');
            }
            _ => sql.push_str("NULL"),
        }
    }
}

async fn stream_rows(
    options: &MySqlConnectOptions,
    statement: &str,
    schema: SchemaRef,
    batch_rows: usize,
    tx: &mpsc::Sender<Result<Option<RecordBatch>>>,
) -> Result<()> {
    let mut conn = connect(options)
        .await
        .map_err(|e| Error::from_sqlx("connecting", e))?;
    let mut rows = sqlx::raw_sql(statement).fetch(&mut conn);
    let mut builder = TextBatch::new(schema.clone());
    while let Some(row) = rows.next().await {
        let row = row.map_err(|e| Error::from_sqlx("reading", e))?;
        builder.push(&row)?;
        if builder.rows == batch_rows {
            let batch = builder.finish()?;
            if tx.send(Ok(Some(batch))).await.is_err() {
                return Ok(());
            }
        }
    }
    if builder.rows > 0 {
        let batch = builder.finish()?;
        if tx.send(Ok(Some(batch))).await.is_err() {
            return Ok(());
        }
    }
    // The end, said explicitly: a closed channel without it is a failure.
    let _ = tx.send(Ok(None)).await;
    Ok(())
}

/// Text values gathered per column, cast to the schema's types per batch.
struct TextBatch {
    schema: SchemaRef,
    text: Vec<StringBuilder>,
    bytes: Vec<BinaryBuilder>,
    rows: usize,
}

impl TextBatch {
    fn new(schema: SchemaRef) -> TextBatch {
        let n = schema.fields().len();
        TextBatch {
            schema,
            text: (0..n).map(|_| StringBuilder::new()).collect(),
            bytes: (0..n).map(|_| BinaryBuilder::new()).collect(),
            rows: 0,
        }
    }

    fn push(&mut self, row: &MySqlRow) -> Result<()> {
        for (i, field) in self.schema.fields().iter().enumerate() {
            let value = row
                .try_get_raw(i)
                .map_err(|e| Error::from_sqlx("reading a value", e))?;
            let binary = field.data_type() == &DataType::Binary;
            if value.is_null() {
                if binary {
                    self.bytes[i].append_null();
                } else {
                    self.text[i].append_null();
                }
                continue;
            }
            if binary {
                let v = <&[u8] as sqlx::Decode<sqlx::MySql>>::decode(value)
                    .map_err(|e| Error::data(format!("column `{}`: {e}", field.name())))?;
                self.bytes[i].append_value(v);
            } else {
                let v = <&str as sqlx::Decode<sqlx::MySql>>::decode(value)
                    .map_err(|e| Error::data(format!("column `{}`: {e}", field.name())))?;
                self.text[i].append_value(v);
            }
        }
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let options = CastOptions {
            safe: false,
            ..Default::default()
        };
        let columns = self
            .schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if f.data_type() == &DataType::Binary {
                    return Ok(Arc::new(self.bytes[i].finish()) as ArrayRef);
                }
                let text: ArrayRef = Arc::new(self.text[i].finish());
                cast_with_options(&text, f.data_type(), &options)
                    .map_err(|e| Error::data(format!("column `{}`: {e}", f.name())))
            })
            .collect::<Result<Vec<_>>>()?;
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| Error::data(format!("building a batch: {e}")))
    }
}

/// A query's rows.
pub struct MyRows {
    schema: SchemaRef,
    rx: mpsc::Receiver<Result<Option<RecordBatch>>>,
    done: bool,
}

impl MyRows {
    /// The schema of every batch.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The next batch, or `None` after the last.
    ///
    /// # Errors
    /// The database's error, classified.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.done {
            return Ok(None);
        }
        match self.rx.blocking_recv() {
            Some(Ok(Some(b))) => Ok(Some(b)),
            Some(Ok(None)) => {
                self.done = true;
                Ok(None)
            }
            Some(Err(e)) => Err(e),
            None => Err(Error::transient(
                "the connection closed before the end of the rows",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_and_protocol_names_agree() {
        assert_eq!(catalog_type("tinyint", "tinyint(1)"), DataType::Boolean);
        assert_eq!(
            catalog_type("bigint", "bigint(20) unsigned"),
            DataType::UInt64
        );
        assert_eq!(catalog_type("int", "int(11) unsigned"), DataType::Int64);
        assert_eq!(catalog_type("longtext", "longtext"), DataType::Utf8);
        assert_eq!(catalog_type("blob", "blob"), DataType::Binary);
        assert_eq!(
            catalog_type("decimal", "decimal(10,2)"),
            DataType::Decimal128(10, 2)
        );
        assert_eq!(catalog_type("decimal", "decimal(65,2)"), DataType::Utf8);
        assert_eq!(declared_type("longtext", true), Some(DataType::Utf8));
        assert_eq!(declared_type("longblob", false), None);
        assert_eq!(
            arrow_type("TIMESTAMP"),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
    }
}
