//! PostgreSQL: catalog queries, streaming reads through binary COPY, and
//! statements.

pub mod binary;
pub mod copy_in;
pub mod types;

use std::collections::HashMap;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use futures_util::StreamExt;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Column, Connection as _, Executor, Row, TypeInfo};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::params::{Dialect, Value, inline};
use crate::{ColumnInfo, TableInfo, runtime};
use binary::{ColumnSpec, CopyDecoder};
use types::{CatalogType, PgType};

/// Bytes gathered from COPY messages before they cross to the reading
/// thread: one channel message per ~1 MB, not per row.
const CHUNK_BYTES: usize = 1 << 20;

/// A table from a `(oid, schema, name, estimated rows)` catalog row, its
/// columns still to be filled in.
fn table_row(r: &sqlx::postgres::PgRow) -> (i64, TableInfo) {
    (
        r.get::<i64, _>(0),
        TableInfo {
            namespace: r.get(1),
            name: r.get(2),
            columns: Vec::new(),
            primary_key: Vec::new(),
            estimated_rows: r.get::<i64, _>(3) as u64,
        },
    )
}

/// One open connection, named as the job names it.
pub struct PgSession {
    name: String,
    options: PgConnectOptions,
    conn: PgConnection,
    /// Column types of tables loaded into, by table name.
    targets: HashMap<String, Vec<copy_in::Target>>,
}

impl PgSession {
    /// Connect to `url`, the connection the job calls `name`.
    ///
    /// # Errors
    /// Auth, config (bad URL, unknown database) or transient errors, each
    /// naming the connection.
    pub fn connect(name: &str, url: &str) -> Result<PgSession> {
        let options: PgConnectOptions = url.parse().map_err(|e| {
            Error::config(format!("connection `{name}`: not a PostgreSQL URL: {e}"))
        })?;
        let options = options.application_name("sluice");
        let conn = runtime()
            .block_on(PgConnection::connect_with(&options))
            .map_err(|e| Error::from_sqlx(&format!("connection `{name}`"), e))?;
        Ok(PgSession {
            name: name.to_string(),
            options,
            conn,
            targets: HashMap::new(),
        })
    }

    fn context(&self, what: &str) -> String {
        format!("connection `{}`: {what}", self.name)
    }

    /// Tables and views in `namespace` (all user schemas when `None`).
    ///
    /// # Errors
    /// A database error.
    pub fn tables(&mut self, namespace: Option<&str>) -> Result<Vec<TableInfo>> {
        let context = self.context("listing tables");
        let rows = runtime()
            .block_on(
                sqlx::query(
                    "SELECT c.oid::int8, n.nspname::text, c.relname::text, GREATEST(c.reltuples, 0)::int8
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                       AND NOT c.relispartition
                       AND CASE WHEN $1::text IS NULL
                                THEN n.nspname NOT IN ('pg_catalog', 'information_schema')
                                     AND n.nspname NOT LIKE 'pg\\_%'
                                ELSE n.nspname = $1 END
                     ORDER BY 2, 3",
                )
                .bind(namespace)
                .fetch_all(&mut self.conn),
            )
            .map_err(|e| Error::from_sqlx(&context, e))?;
        let mut tables: Vec<(i64, TableInfo)> = rows.iter().map(table_row).collect();
        self.fill_columns(&mut tables)?;
        Ok(tables.into_iter().map(|(_, t)| t).collect())
    }

    /// One table (`name` or `schema.name`, as PostgreSQL resolves it).
    ///
    /// # Errors
    /// A config error naming the table when there is none.
    pub fn table(&mut self, name: &str) -> Result<TableInfo> {
        let context = self.context(&format!("looking up table `{name}`"));
        let row = runtime()
            .block_on(
                sqlx::query(
                    "SELECT c.oid::int8, n.nspname::text, c.relname::text, GREATEST(c.reltuples, 0)::int8
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE c.oid = to_regclass($1)",
                )
                .bind(name)
                .fetch_optional(&mut self.conn),
            )
            .map_err(|e| Error::from_sqlx(&context, e))?;
        let Some(r) = row else {
            return Err(Error::config(self.context(&format!(
                "table `{name}` does not exist (or is not visible to this user)"
            ))));
        };
        let mut tables = vec![table_row(&r)];
        self.fill_columns(&mut tables)?;
        Ok(tables.pop().expect("one table").1)
    }

    fn fill_columns(&mut self, tables: &mut [(i64, TableInfo)]) -> Result<()> {
        let oids: Vec<i64> = tables.iter().map(|(oid, _)| *oid).collect();
        let context = self.context("reading column definitions");
        let columns = runtime()
            .block_on(
                sqlx::query(
                    "SELECT a.attrelid::int8, a.attname::text, a.atttypid::int8, a.atttypmod,
                            format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
                     FROM pg_attribute a
                     WHERE a.attrelid = ANY($1::int8[]::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
                     ORDER BY a.attrelid, a.attnum",
                )
                .bind(&oids)
                .fetch_all(&mut self.conn),
            )
            .map_err(|e| Error::from_sqlx(&context, e))?;
        let keys = runtime()
            .block_on(
                sqlx::query(
                    "SELECT i.indrelid::int8, a.attname::text
                     FROM pg_index i
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                     WHERE i.indisprimary AND i.indrelid = ANY($1::int8[]::oid[])
                     ORDER BY i.indrelid, array_position(i.indkey::int2[], a.attnum)",
                )
                .bind(&oids)
                .fetch_all(&mut self.conn),
            )
            .map_err(|e| Error::from_sqlx(&context, e))?;
        let type_oids: Vec<u32> = columns.iter().map(|r| r.get::<i64, _>(2) as u32).collect();
        let catalog = self.catalog(&type_oids)?;
        let index: HashMap<i64, usize> = tables
            .iter()
            .enumerate()
            .map(|(i, (oid, _))| (*oid, i))
            .collect();
        for r in &columns {
            let Some(&t) = index.get(&r.get::<i64, _>(0)) else {
                continue;
            };
            let ty = PgType::resolve(r.get::<i64, _>(2) as u32, r.get(3), &|o| {
                catalog.get(&o).cloned()
            });
            tables[t].1.columns.push(ColumnInfo {
                name: r.get(1),
                database_type: r.get(4),
                arrow_type: ty
                    .as_ref()
                    .map_or(arrow::datatypes::DataType::Utf8, PgType::arrow_type),
                nullable: r.get(5),
            });
        }
        for r in &keys {
            if let Some(&t) = index.get(&r.get::<i64, _>(0)) {
                tables[t].1.primary_key.push(r.get(1));
            }
        }
        Ok(())
    }

    /// Catalog entries of the non-built-in types among `oids`, following
    /// array elements and domain bases.
    fn catalog(&mut self, oids: &[u32]) -> Result<HashMap<u32, CatalogType>> {
        let mut found: HashMap<u32, CatalogType> = HashMap::new();
        let mut wanted: Vec<i64> = oids
            .iter()
            .filter(|&&o| PgType::builtin(o, -1).is_none() && o != types::oid::NUMERIC)
            .map(|&o| i64::from(o))
            .collect();
        let context = self.context("reading type definitions");
        for _ in 0..4 {
            wanted.sort_unstable();
            wanted.dedup();
            wanted.retain(|o| !found.contains_key(&(*o as u32)));
            if wanted.is_empty() {
                break;
            }
            let rows = runtime()
                .block_on(
                    sqlx::query(
                        "SELECT oid::int8, typtype::text, typcategory::text, typelem::int8, typbasetype::int8
                         FROM pg_type WHERE oid = ANY($1::int8[]::oid[])",
                    )
                    .bind(&wanted)
                    .fetch_all(&mut self.conn),
                )
                .map_err(|e| Error::from_sqlx(&context, e))?;
            wanted.clear();
            for r in rows {
                let first = |s: String| s.chars().next().unwrap_or(' ');
                let element = r.get::<i64, _>(3) as u32;
                let base = r.get::<i64, _>(4) as u32;
                for next in [element, base] {
                    if next != 0 && PgType::builtin(next, -1).is_none() {
                        wanted.push(i64::from(next));
                    }
                }
                found.insert(
                    r.get::<i64, _>(0) as u32,
                    CatalogType {
                        kind: first(r.get(1)),
                        category: first(r.get(2)),
                        element: (element != 0).then_some(element),
                        base: (base != 0).then_some(base),
                    },
                );
            }
        }
        Ok(found)
    }

    /// The columns a query returns and how each is read.
    fn describe(&mut self, statement: &str) -> Result<Vec<(ColumnSpec, bool)>> {
        let context = self.context("preparing the query");
        let described = runtime()
            .block_on(self.conn.describe(statement))
            .map_err(|e| Error::from_sqlx(&context, e))?;
        // Type modifiers (numeric precision) come from the source table's
        // catalog when the column is a plain table column.
        let relations: Vec<i64> = described
            .columns()
            .iter()
            .filter_map(|c| c.relation_id().map(|o| i64::from(o.0)))
            .collect();
        let mut typmods: HashMap<(u32, i16), i32> = HashMap::new();
        if !relations.is_empty() {
            let rows = runtime()
                .block_on(
                    sqlx::query(
                        "SELECT attrelid::int8, attnum, atttypmod FROM pg_attribute
                         WHERE attrelid = ANY($1::int8[]::oid[]) AND attnum > 0",
                    )
                    .bind(&relations)
                    .fetch_all(&mut self.conn),
                )
                .map_err(|e| Error::from_sqlx(&context, e))?;
            for r in rows {
                typmods.insert((r.get::<i64, _>(0) as u32, r.get(1)), r.get(2));
            }
        }
        let oids: Vec<u32> = described
            .columns()
            .iter()
            .map(|c| c.type_info().oid().map_or(0, |o| o.0))
            .collect();
        let catalog = self.catalog(&oids)?;
        let mut seen = std::collections::HashSet::new();
        described
            .columns()
            .iter()
            .zip(oids)
            .map(|(c, oid)| {
                if !seen.insert(c.name().to_string()) {
                    return Err(Error::config(self.context(&format!(
                        "the query returns two columns named `{}`: give them distinct aliases",
                        c.name()
                    ))));
                }
                let typmod = match (c.relation_id(), c.relation_attribute_no()) {
                    (Some(rel), Some(att)) => typmods.get(&(rel.0, att)).copied().unwrap_or(-1),
                    _ => -1,
                };
                let mapped = PgType::resolve(oid, typmod, &|o| catalog.get(&o).cloned());
                let as_text = mapped.is_none();
                if as_text {
                    tracing::debug!(
                        column = c.name(),
                        r#type = c.type_info().name(),
                        "no Arrow mapping; reading as text"
                    );
                }
                Ok((
                    ColumnSpec {
                        name: c.name().to_string(),
                        ty: mapped.unwrap_or(PgType::Text),
                    },
                    as_text,
                ))
            })
            .collect()
    }

    /// Stream a query's rows as batches of up to `batch_rows` rows.
    ///
    /// The rows travel over a second connection in COPY's binary format and
    /// are decoded on the thread that calls [`PgRows::next`].
    ///
    /// # Errors
    /// Config errors for a bad query (a missing table or column is named),
    /// transient ones for connection trouble.
    pub fn query(
        &mut self,
        statement: &str,
        params: &[Value],
        batch_rows: usize,
    ) -> Result<PgRows> {
        let statement = inline(statement, params, Dialect::Postgres)?;
        let columns = self.describe(&statement)?;
        let projection = columns
            .iter()
            .map(|(c, as_text)| {
                let q = Dialect::Postgres.quote(&c.name);
                if *as_text {
                    format!("{q}::text AS {q}")
                } else {
                    q
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let copy = format!(
            "COPY (SELECT {projection} FROM ({statement}) AS sluice_q) TO STDOUT (FORMAT binary)"
        );
        let decoder = CopyDecoder::new(columns.into_iter().map(|(c, _)| c).collect());
        let (tx, rx) = mpsc::channel::<Result<Vec<u8>>>(4);
        let (recycle, recycled) = mpsc::unbounded_channel();
        let options = self.options.clone();
        let context = self.context("reading rows");
        runtime().spawn(async move {
            let result = stream_copy(&options, &copy, &tx, recycled).await;
            if let Err(e) = result {
                let _ = tx.send(Err(Error::from_sqlx(&context, e))).await;
            }
        });
        Ok(PgRows {
            decoder,
            rx,
            recycle,
            batch_rows: batch_rows.max(1),
            context: self.context("decoding rows"),
        })
    }

    /// Run statements that return no rows (several, separated by `;`, run
    /// as one simple query); returns the rows affected.
    ///
    /// # Errors
    /// A database error, classified.
    pub fn execute(&mut self, statement: &str, params: &[Value]) -> Result<u64> {
        let statement = inline(statement, params, Dialect::Postgres)?;
        let context = self.context("running a statement");
        runtime()
            .block_on(sqlx::raw_sql(&statement).execute(&mut self.conn))
            .map(|r| r.rows_affected())
            .map_err(|e| Error::from_sqlx(&context, e))
    }
}

impl PgSession {
    /// The columns of `table` and how each is written in binary.
    fn target_columns(&mut self, table: &str) -> Result<Vec<copy_in::Target>> {
        let context = self.context(&format!("looking up table `{table}`"));
        let rows = runtime()
            .block_on(
                sqlx::query(
                    "SELECT a.attname::text, a.atttypid::int8, a.atttypmod, t.typelem::int8,
                            format_type(a.atttypid, a.atttypmod)
                     FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                     WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
                     ORDER BY a.attnum",
                )
                .bind(table)
                .fetch_all(&mut self.conn),
            )
            .map_err(|e| Error::from_sqlx(&context, e))?;
        if rows.is_empty() {
            return Err(Error::config(self.context(&format!(
                "table `{table}` does not exist (or is not visible to this user)"
            ))));
        }
        let oids: Vec<u32> = rows.iter().map(|r| r.get::<i64, _>(1) as u32).collect();
        let catalog = self.catalog(&oids)?;
        rows.iter()
            .map(|r| {
                let name: String = r.get(0);
                let oid = r.get::<i64, _>(1) as u32;
                let ty = match PgType::resolve(oid, r.get(2), &|o| catalog.get(&o).cloned()) {
                    Some(t) => t,
                    // Unconstrained numeric: written from each value.
                    None if oid == types::oid::NUMERIC => PgType::Numeric {
                        precision: 38,
                        scale: 0,
                    },
                    None => {
                        return Err(Error::config(self.context(&format!(
                            "column `{name}` of `{table}` is {}, which Sluice cannot load; load into a text column and convert in SQL",
                            r.get::<String, _>(4)
                        ))));
                    }
                };
                Ok(copy_in::Target {
                    name,
                    ty,
                    element_oid: r.get::<i64, _>(3) as u32,
                })
            })
            .collect()
    }

    /// Bulk-load `batch` into `table` (SQL syntax, quoted as needed) with
    /// `COPY … FROM STDIN (FORMAT binary)`; the batch's column names are
    /// the table's. Returns the rows loaded.
    ///
    /// # Errors
    /// A config error for a column the table lacks; a data error naming
    /// the column and row of a value that does not fit.
    pub fn load(&mut self, table: &str, batch: &RecordBatch) -> Result<u64> {
        let schema = batch.schema();
        let lookup = |targets: &[copy_in::Target]| -> Option<Vec<copy_in::Target>> {
            schema
                .fields()
                .iter()
                .map(|f| targets.iter().find(|t| t.name == *f.name()).cloned())
                .collect()
        };
        let cached = self.targets.get(table).and_then(|t| lookup(t));
        let targets = match cached {
            Some(t) => t,
            None => {
                // New table, or new columns since the last look.
                let all = self.target_columns(table)?;
                let found = lookup(&all);
                self.targets.insert(table.to_string(), all.clone());
                found.ok_or_else(|| {
                    let missing = schema
                        .fields()
                        .iter()
                        .find(|f| !all.iter().any(|t| t.name == *f.name()))
                        .map(|f| f.name().clone())
                        .unwrap_or_default();
                    Error::config(
                        self.context(&format!("table `{table}` has no column `{missing}`")),
                    )
                })?
            }
        };
        let mut data = Vec::with_capacity(batch.get_array_memory_size() + 1024);
        data.extend_from_slice(copy_in::HEADER);
        copy_in::encode(batch, &targets, &mut data)
            .map_err(|e| Error::data(self.context(&format!("loading into `{table}`: {e}"))))?;
        data.extend_from_slice(copy_in::TRAILER);
        let columns = targets
            .iter()
            .map(|t| Dialect::Postgres.quote(&t.name))
            .collect::<Vec<_>>()
            .join(", ");
        let statement = format!("COPY {table} ({columns}) FROM STDIN (FORMAT binary)");
        let context = self.context(&format!("loading into `{table}`"));
        let conn = &mut self.conn;
        runtime()
            .block_on(async move {
                let mut copy = conn.copy_in_raw(&statement).await?;
                if let Err(e) = copy.send(data).await {
                    let _ = copy.abort("sluice: send failed").await;
                    return Err(e);
                }
                copy.finish().await
            })
            .map_err(|e| Error::from_sqlx(&context, e))
    }
}

/// Chunks travel to the reading thread and come back empty to be refilled:
/// a handful of buffers serve the whole query, instead of one allocation
/// per megabyte freed on another thread (which glibc's per-thread arenas
/// turn into resident memory that is never given back).
async fn stream_copy(
    options: &PgConnectOptions,
    copy: &str,
    tx: &mpsc::Sender<Result<Vec<u8>>>,
    mut recycled: mpsc::UnboundedReceiver<Vec<u8>>,
) -> Result<(), sqlx::Error> {
    let mut fresh = move || {
        recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK_BYTES + 64 * 1024))
    };
    let mut conn = PgConnection::connect_with(options).await?;
    let mut stream = conn.copy_out_raw(copy).await?;
    let mut chunk = fresh();
    while let Some(bytes) = stream.next().await {
        chunk.extend_from_slice(&bytes?);
        if chunk.len() >= CHUNK_BYTES {
            let full = std::mem::replace(&mut chunk, fresh());
            if tx.send(Ok(full)).await.is_err() {
                // The reader is gone: stop reading (the connection closes).
                return Ok(());
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(Ok(chunk)).await;
    }
    Ok(())
}

/// A query's rows, decoded batch by batch.
pub struct PgRows {
    decoder: CopyDecoder,
    rx: mpsc::Receiver<Result<Vec<u8>>>,
    /// Empty chunks going back to be refilled.
    recycle: mpsc::UnboundedSender<Vec<u8>>,
    batch_rows: usize,
    context: String,
}

impl PgRows {
    /// The schema of every batch.
    pub fn schema(&self) -> &SchemaRef {
        self.decoder.schema()
    }

    /// The next batch, or `None` after the last.
    ///
    /// # Errors
    /// Transient errors when the connection drops; data errors naming the
    /// row and column of a value that has no Arrow form.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            self.decoder
                .decode(self.batch_rows)
                .map_err(|e| Error::data(format!("{}: {e}", self.context)))?;
            let rows = self.decoder.buffered_rows();
            if rows >= self.batch_rows || (self.decoder.finished() && rows > 0) {
                return self
                    .decoder
                    .take_batch()
                    .map(Some)
                    .map_err(|e| Error::data(format!("{}: {e}", self.context)));
            }
            if self.decoder.finished() {
                return Ok(None);
            }
            match self.rx.blocking_recv() {
                Some(Ok(mut chunk)) => {
                    self.decoder.feed(&chunk);
                    chunk.clear();
                    let _ = self.recycle.send(chunk);
                }
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(Error::transient(format!(
                        "{}: the connection closed before the end of the rows",
                        self.context
                    )));
                }
            }
        }
    }
}
