//! BigQuery datasets the job granted to this plugin.
//!
//! The host holds the credentials and runs every job: loads of Parquet
//! written through the blob grant (a `gs://` prefix) or uploaded directly,
//! copies, and the `MERGE` / `DELETE` statements it builds itself from the
//! names given here, so a plugin reaches no dataset it was not granted.
//! Loads made inside [`crate::Writer::commit`] are named after the commit:
//! a commit made again after a crash finds its load done instead of
//! loading twice.
//!
//! The native test harness has no BigQuery: plugins that use it are tested
//! end to end through the host against an emulator.

use arrow_schema::Schema;

use crate::{Batch, Error, Result};

#[cfg(target_arch = "wasm32")]
use crate::__wit::sluice::plugin0_2_0::bigquery as wit;

/// A table in a granted dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    /// The dataset.
    pub dataset: String,
    /// The table.
    pub table: String,
}

impl TableRef {
    /// `dataset.table`.
    pub fn new(dataset: &str, table: &str) -> TableRef {
        TableRef {
            dataset: dataset.to_string(),
            table: table.to_string(),
        }
    }
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.dataset, self.table)
    }
}

/// How a new table is laid out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableOptions {
    /// Partition on this DATE / DATETIME / TIMESTAMP column, by `hour`,
    /// `day`, `month` or `year`.
    pub partitioning: Option<(String, String)>,
    /// At most four clustering columns.
    pub clustering: Vec<String>,
    /// Column descriptions: (column, text).
    pub descriptions: Vec<(String, String)>,
    /// Drop the table this many hours after it is created.
    pub expiration_hours: Option<u32>,
}

/// A table as BigQuery describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    /// BigQuery's `schema.fields`.
    pub fields: Vec<serde_json::Value>,
    /// Rows.
    pub rows: u64,
    /// The partitioning column.
    pub partition_column: Option<String>,
    /// The clustering columns.
    pub clustering: Vec<String>,
}

impl TableInfo {
    /// Its column names.
    pub fn columns(&self) -> Vec<String> {
        self.fields
            .iter()
            .filter_map(|f| f["name"].as_str().map(str::to_string))
            .collect()
    }
}

/// What a finished job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobInfo {
    /// Its id.
    pub id: String,
    /// Rows loaded, or changed by DML.
    pub rows: u64,
    /// Bytes loaded or processed.
    pub bytes: u64,
}

/// How a load treats the rows already in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Add the rows.
    Append,
    /// Replace the table's rows.
    Truncate,
}

#[cfg(target_arch = "wasm32")]
fn r(t: &TableRef) -> wit::TableRef {
    wit::TableRef {
        dataset: t.dataset.clone(),
        table: t.table.clone(),
    }
}

#[cfg(target_arch = "wasm32")]
fn m(mode: WriteMode) -> wit::WriteMode {
    match mode {
        WriteMode::Append => wit::WriteMode::Append,
        WriteMode::Truncate => wit::WriteMode::Truncate,
    }
}

#[cfg(target_arch = "wasm32")]
fn job(j: wit::JobInfo) -> JobInfo {
    JobInfo {
        id: j.id,
        rows: j.rows,
        bytes: j.bytes,
    }
}

#[cfg(target_arch = "wasm32")]
fn info(t: wit::TableInfo) -> Result<TableInfo> {
    let fields: Vec<serde_json::Value> = serde_json::from_str(&t.fields)
        .map_err(|e| Error::internal(format!("BigQuery table fields: {e}")))?;
    Ok(TableInfo {
        fields,
        rows: t.rows,
        partition_column: t.partition_column,
        clustering: t.clustering,
    })
}

#[cfg(not(target_arch = "wasm32"))]
fn no_native() -> Error {
    Error::config(
        "the native test harness has no `bigquery` capability: test BigQuery plugins through the host",
    )
}

/// Expands to the wasm call, or to the native harness's refusal.
macro_rules! host {
    ($wasm:expr, $($unused:expr),*) => {{
        #[cfg(target_arch = "wasm32")]
        {
            $wasm
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            $(let _ = &$unused;)*
            Err(no_native())
        }
    }};
}

/// The project jobs run in (empty without a grant).
pub fn project() -> String {
    #[cfg(target_arch = "wasm32")]
    return wit::project();
    #[cfg(not(target_arch = "wasm32"))]
    String::new()
}

/// Check that a granted dataset can be reached; with `create`, create it
/// when missing.
///
/// # Errors
/// A config error for a dataset not granted or missing.
pub fn dataset(dataset: &str, create: bool) -> Result<()> {
    host!(Ok(wit::dataset(dataset, create)?), dataset, create)
}

/// The table, or `None` when it does not exist.
///
/// # Errors
/// A config error for a table outside the grant.
pub fn table(t: &TableRef) -> Result<Option<TableInfo>> {
    host!(wit::table(&r(t))?.map(info).transpose(), t)
}

/// Make a table ready for batches of `schema`: create it when missing
/// (with `create`), add the nullable columns it lacks, refuse a column
/// whose type cannot take the data's.
///
/// # Errors
/// A config error naming the column and both types.
pub fn conform_table(
    t: &TableRef,
    schema: &Schema,
    options: &TableOptions,
    create: bool,
) -> Result<TableInfo> {
    host!(
        {
            let options = wit::TableOptions {
                partitioning: options.partitioning.clone().map(|(column, granularity)| {
                    wit::Partitioning {
                        column,
                        granularity,
                    }
                }),
                clustering: options.clustering.clone(),
                descriptions: options.descriptions.clone(),
                expiration_hours: options.expiration_hours,
            };
            info(wit::conform_table(
                &r(t),
                &crate::encode_schema(schema),
                &options,
                create,
            )?)
        },
        t,
        schema,
        options,
        create
    )
}

/// Drop a table; a missing one is no error.
///
/// # Errors
/// BigQuery's refusal.
pub fn drop_table(t: &TableRef) -> Result<()> {
    host!(Ok(wit::drop_table(&r(t))?), t)
}

/// Load Parquet objects written through the blob grant (staged ones by
/// their path) into `t` in one job.
///
/// # Errors
/// A data error with BigQuery's words for rows it could not take.
pub fn load_objects(t: &TableRef, paths: &[String], mode: WriteMode) -> Result<JobInfo> {
    host!(
        Ok(job(wit::load_objects(&r(t), paths, m(mode))?)),
        t,
        paths,
        mode
    )
}

/// Copy `source`'s rows into `target` (one copy job): appended, or
/// replacing `target`'s.
///
/// # Errors
/// BigQuery's errors.
pub fn copy(source: &TableRef, target: &TableRef, mode: WriteMode) -> Result<JobInfo> {
    host!(
        Ok(job(wit::copy(&r(source), &r(target), m(mode))?)),
        source,
        target,
        mode
    )
}

/// Upsert `source` into `target` on `key` (one MERGE).
///
/// # Errors
/// BigQuery's errors.
pub fn merge(target: &TableRef, source: &TableRef, key: &[String]) -> Result<JobInfo> {
    host!(
        Ok(job(wit::merge(&r(target), &r(source), key)?)),
        target,
        source,
        key
    )
}

/// Delete the rows whose `column` is in `[from, to)`, or all rows.
///
/// # Errors
/// BigQuery's errors.
pub fn delete_rows(
    t: &TableRef,
    range: Option<(&str, Option<&str>, Option<&str>)>,
) -> Result<JobInfo> {
    host!(
        {
            let (column, from, to) = match range {
                Some((c, f, t)) => (Some(c), f, t),
                None => (None, None, None),
            };
            Ok(job(wit::delete_rows(&r(t), column, from, to)?))
        },
        t,
        range
    )
}

/// A named query parameter: `@name` in a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its name, without the `@`.
    pub name: String,
    /// BigQuery's type: `INT64`, `STRING`, `TIMESTAMP`, `DATE`, …
    pub ty: String,
    /// The value as BigQuery reads it from text; `None` is NULL.
    pub value: Option<String>,
}

#[cfg(target_arch = "wasm32")]
fn ps(params: &[Param]) -> Vec<wit::Param> {
    params
        .iter()
        .map(|p| wit::Param {
            name: p.name.clone(),
            type_: p.ty.clone(),
            value: p.value.clone(),
        })
        .collect()
}

/// The schema of one SELECT's result. The host dry-runs every statement
/// first and refuses one that is not a single SELECT or that BigQuery
/// says reads outside the granted datasets.
///
/// # Errors
/// An auth error naming a table outside the grant; BigQuery's errors.
pub fn describe(statement: &str, params: &[Param]) -> Result<arrow_schema::SchemaRef> {
    host!(
        crate::decode_schema(&wit::describe(statement, &ps(params))?),
        statement,
        params
    )
}

/// Run one SELECT (checked like [`describe`]) and read its result in
/// batches of up to `batch_rows`.
///
/// # Errors
/// See [`describe`].
pub fn query(statement: &str, params: &[Param], batch_rows: u32) -> Result<Rows> {
    host!(
        Ok(Rows {
            inner: wit::query(statement, &ps(params), batch_rows)?,
        }),
        statement,
        params,
        batch_rows
    )
}

/// Run one SELECT (checked like [`describe`]) with `EXPORT DATA`: its
/// result becomes Parquet objects under `path` of the blob grant (a
/// `gs://` prefix, emptied first), read back as batches; the host deletes
/// them as they are read.
///
/// # Errors
/// See [`describe`]; a config error without a `gs://` blob grant.
pub fn export(statement: &str, params: &[Param], path: &str) -> Result<Rows> {
    host!(
        Ok(Rows {
            inner: wit::export(statement, &ps(params), path)?,
        }),
        statement,
        params,
        path
    )
}

/// A query's result, batch by batch.
pub struct Rows {
    #[cfg(target_arch = "wasm32")]
    inner: wit::Rows,
}

impl Rows {
    /// The schema of every batch.
    ///
    /// # Errors
    /// Only on a host bug.
    pub fn schema(&self) -> Result<arrow_schema::SchemaRef> {
        host!(crate::decode_schema(&self.inner.schema()),)
    }

    /// The next batch, or `None` after the last.
    ///
    /// # Errors
    /// BigQuery's errors; a data error for a value its column cannot hold.
    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        host!(Ok(self.inner.next()?.map(Batch)),)
    }
}

/// Rows loaded without GCS: gathered as Parquet on the host, then sent
/// with one resumable upload.
pub struct Upload {
    #[cfg(target_arch = "wasm32")]
    inner: wit::Upload,
}

impl Upload {
    /// Start gathering batches of `schema`.
    ///
    /// # Errors
    /// Without a grant, or when the host cannot make a temporary file.
    pub fn create(schema: &Schema) -> Result<Upload> {
        host!(
            Ok(Upload {
                inner: wit::Upload::create(&crate::encode_schema(schema))?,
            }),
            schema
        )
    }

    /// Add a batch (its rows stay in the host).
    ///
    /// # Errors
    /// A full disk.
    pub fn write(&self, rows: &Batch) -> Result<()> {
        host!(Ok(self.inner.write(&rows.0)?), rows)
    }

    /// Send what was written to `t` in one load job.
    ///
    /// # Errors
    /// A data error with BigQuery's words for rows it could not take.
    pub fn load(&self, t: &TableRef, mode: WriteMode) -> Result<JobInfo> {
        host!(Ok(job(self.inner.load(&r(t), m(mode))?)), t, mode)
    }
}
