//! `bigquery` source: a table, or a query, of the granted datasets.
//!
//! The plugin writes one SELECT; the host dry-runs it and refuses it if
//! BigQuery says it would read outside the grant, then runs it and hands
//! back the rows:
//!
//! - `read: results` pages through the query job's result (JSON pages,
//!   typed into Arrow on the host): no GCS needed;
//! - `read: export` has BigQuery write the result as Parquet under the
//!   blob grant's `gs://` prefix (`EXPORT DATA`), which the host reads
//!   back and deletes as it goes: for large reads.
//!
//! Incremental reads (`incremental: {cursor, key}`) first ask BigQuery for
//! the largest `(cursor…, key…)` past the saved one, then read the rows
//! up to it; that bound is the state saved once the sink committed, so a
//! run reads each row once whatever lands while it reads.

mod sql;

use std::sync::Arc;

use arrow_schema::{DataType, Schema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_sdk::bigquery;
use sluice_sdk::{
    Error, Event, Info, Partition, Reader, Result, Source, StreamInfo, SyncMode, blob,
    export_source,
};

use sql::Select;

/// How rows come back from BigQuery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// Page through the query's result: no GCS needed.
    #[default]
    Results,
    /// Export the result as Parquet under the blob grant's `gs://` prefix
    /// and read those objects (faster for large reads).
    Export,
}

/// The source's config.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("x-sluice-state-ignores" = ["batch_rows", "read", "export_path"]))]
pub struct Config {
    /// The dataset `table` is in (one the grant names).
    #[serde(default)]
    pub dataset: Option<String>,
    /// The table to read.
    #[serde(default)]
    pub table: Option<String>,
    /// A query to read instead (standard SQL; tables as `dataset.table`).
    #[serde(default)]
    pub query: Option<String>,
    /// Columns of `table` to read, in this order (default: all).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Only rows matching this condition, e.g. `status != 'draft'`.
    #[serde(default, rename = "where")]
    pub filter: Option<String>,
    /// Read only rows past the last run's.
    #[serde(default)]
    pub incremental: Option<Incremental>,
    /// How rows come back: `results` (default) or `export`.
    #[serde(default)]
    pub read: Via,
    /// Where `export` writes under the blob grant (default
    /// `.sluice-bigquery-export/<stream>`); emptied before each export.
    #[serde(default)]
    pub export_path: Option<String>,
    /// Rows per batch when paging through results (default 10,000).
    #[serde(default = "default_batch_rows")]
    pub batch_rows: u32,
    /// The stream's name (default: the table's, or `query`).
    #[serde(default)]
    pub stream: Option<String>,
}

/// Incremental reads.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// Columns that grow with every change, e.g. `[updated_at]`.
    pub cursor: Vec<String>,
    /// Columns that tell rows with the same cursor apart. Without them a
    /// row that arrives later with exactly the last cursor value is not
    /// read.
    #[serde(default)]
    pub key: Vec<String>,
}

fn default_batch_rows() -> u32 {
    10_000
}

/// One value of the saved bound, typed for a query parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Bound {
    #[serde(rename = "type")]
    ty: String,
    value: String,
}

/// A partition's saved state: the largest `(cursor…, key…)` read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    after: Vec<Bound>,
}

fn stream_name(config: &Config) -> String {
    config
        .stream
        .clone()
        .unwrap_or_else(|| config.table.clone().unwrap_or_else(|| "query".into()))
}

/// The statement the config describes, checked for what it names.
fn select(config: &Config) -> Result<Select> {
    let order = match &config.incremental {
        Some(inc) if inc.cursor.is_empty() => {
            return Err(Error::config(
                "incremental.cursor: name at least one column",
            ));
        }
        Some(inc) => inc
            .cursor
            .iter()
            .chain(inc.key.iter().filter(|k| !inc.cursor.contains(k)))
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    let columns = config.columns.clone().unwrap_or_default();
    if let Some(missing) = order
        .iter()
        .find(|c| !columns.is_empty() && !columns.contains(c))
    {
        return Err(Error::config(format!(
            "columns: add `{missing}`: incremental reads need their cursor and key columns"
        )));
    }
    let relation = match (&config.table, &config.query) {
        (Some(_), Some(_)) => return Err(Error::config("set `table` or `query`, not both")),
        (None, None) => return Err(Error::config("set `table` (with `dataset`) or `query`")),
        (Some(table), None) => {
            let dataset = config.dataset.as_deref().ok_or_else(|| {
                Error::config("`table` needs `dataset`: the granted dataset it is in")
            })?;
            format!(
                "{}.{}.{}",
                sql::quote(&bigquery::project())?,
                sql::quote(dataset)?,
                sql::quote(table)?
            )
        }
        (None, Some(query)) => {
            if config.columns.is_some() {
                return Err(Error::config(
                    "`columns` applies to a table; select the columns in the query",
                ));
            }
            format!("({query})")
        }
    };
    Ok(Select {
        relation,
        query: config.query.clone(),
        columns,
        filter: config.filter.clone(),
        order,
        cursor: config
            .incremental
            .as_ref()
            .map(|i| i.cursor.clone())
            .unwrap_or_default(),
    })
}

/// The result's schema, by a dry run (which checks the grant too), with
/// the cursor and key columns checked against it.
fn describe(select: &Select) -> Result<Arc<Schema>> {
    let (statement, params) = select.rows(&[], None)?;
    let schema = bigquery::describe(&statement, &params)?;
    for c in &select.order {
        let known: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        if !known.contains(&c.as_str()) {
            return Err(Error::config(format!(
                "incremental: the result has no column `{c}` (columns: {})",
                known.join(", ")
            )));
        }
    }
    Ok(schema)
}

/// The BigQuery type a parameter holding a value of `dt` has.
fn param_type(column: &str, dt: &DataType) -> Result<&'static str> {
    Ok(match dt {
        DataType::Int64 => "INT64",
        DataType::Float64 => "FLOAT64",
        DataType::Decimal128(..) => "NUMERIC",
        DataType::Decimal256(..) => "BIGNUMERIC",
        DataType::Boolean => "BOOL",
        DataType::Utf8 => "STRING",
        DataType::Date32 => "DATE",
        DataType::Time64(_) => "TIME",
        DataType::Timestamp(_, None) => "DATETIME",
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP",
        other => {
            return Err(Error::config(format!(
                "incremental: column `{column}` is {other}, which cannot be a cursor or key"
            )));
        }
    })
}

/// The bound row's values, typed, as BigQuery reads them from text.
fn bound_of(row: &arrow_array::RecordBatch) -> Result<Vec<Bound>> {
    let options = arrow_cast::display::FormatOptions::default();
    row.schema()
        .fields()
        .iter()
        .zip(row.columns())
        .map(|(f, column)| {
            let ty = param_type(f.name(), f.data_type())?;
            // Instants in UTC with an explicit offset, which BigQuery
            // reads as a TIMESTAMP.
            let (column, suffix) = match f.data_type() {
                DataType::Timestamp(unit, Some(_)) => (
                    arrow_cast::cast(column, &DataType::Timestamp(*unit, None))?,
                    "+00:00",
                ),
                _ => (column.clone(), ""),
            };
            let formatter = arrow_cast::display::ArrayFormatter::try_new(&column, &options)?;
            Ok(Bound {
                ty: ty.to_string(),
                value: format!("{}{suffix}", formatter.value(0)),
            })
        })
        .collect()
}

/// The bound this run reads up to: the largest `(cursor…, key…)` past
/// `after`, or `None` when nothing is new.
fn upper_bound(select: &Select, after: &[Bound]) -> Result<Option<Vec<Bound>>> {
    let (statement, params) = select.last_row(after)?;
    let mut rows = bigquery::query(&statement, &params, 1)?;
    let columns = rows.schema()?.fields().len();
    if columns != select.order.len() {
        return Err(Error::internal(format!(
            "the bound query returned {columns} columns for {} cursor and key columns",
            select.order.len()
        )));
    }
    let Some(batch) = rows.next_batch()? else {
        return Ok(None);
    };
    let row = batch.slice(0, 1).to_record_batch()?;
    bound_of(&row).map(Some)
}

/// The bigquery source.
pub struct BigQuerySource;

impl Source for BigQuerySource {
    type Config = Config;
    type Reader = QueryReader;

    fn info() -> Info {
        Info {
            name: "bigquery",
            version: env!("CARGO_PKG_VERSION"),
            description: "Read a BigQuery table or query (results, or exported to gs:// as Parquet), incrementally by cursor",
            capabilities: &["bigquery", "blob"],
        }
    }

    fn check(config: &Config) -> Result<()> {
        let select = select(config)?;
        describe(&select)?;
        if config.read == Via::Export {
            // The export goes under the blob grant: it must be there.
            blob::list_after(&format!("{}/*", export_path(config)), None)?;
        }
        Ok(())
    }

    fn discover(config: &Config) -> Result<Vec<StreamInfo>> {
        let select = select(config)?;
        let schema = describe(&select)?;
        Ok(vec![StreamInfo {
            name: stream_name(config),
            schema: Some(schema),
            primary_key: config
                .incremental
                .as_ref()
                .map(|i| i.key.clone())
                .unwrap_or_default(),
            cursor_fields: select.cursor.clone(),
            sync_modes: vec![SyncMode::FullRefresh, SyncMode::Incremental],
        }])
    }

    fn partitions(config: &Config, stream: &str, _state: Option<&str>) -> Result<Vec<Partition>> {
        if stream != stream_name(config) {
            return Err(Error::config(format!(
                "no stream `{stream}`; this source reads `{}`",
                stream_name(config)
            )));
        }
        Ok(vec![Partition {
            stream: stream.to_string(),
            id: "0".into(),
            spec: String::new(),
        }])
    }

    fn open(config: Config, _partition: Partition, state: Option<String>) -> Result<QueryReader> {
        let select = select(&config)?;
        let saved: State = match (&config.incremental, state) {
            (Some(_), Some(s)) if !s.is_empty() => serde_json::from_str(&s)
                .map_err(|e| Error::internal(format!("unreadable saved state: {e}")))?,
            _ => State::default(),
        };
        let mut reader = QueryReader {
            rows: None,
            checkpoint: None,
        };
        let upper = if config.incremental.is_some() {
            match upper_bound(&select, &saved.after)? {
                Some(upper) => Some(upper),
                // Nothing past the saved bound: nothing to read.
                None => return Ok(reader),
            }
        } else {
            None
        };
        let (statement, params) = select.rows(&saved.after, upper.as_deref())?;
        reader.rows = Some(match config.read {
            Via::Results => bigquery::query(&statement, &params, config.batch_rows)?,
            Via::Export => bigquery::export(&statement, &params, &export_path(&config))?,
        });
        reader.checkpoint =
            upper.map(|after| serde_json::to_string(&State { after }).expect("bounds serialize"));
        Ok(reader)
    }
}

fn export_path(config: &Config) -> String {
    config
        .export_path
        .clone()
        .unwrap_or_else(|| format!(".sluice-bigquery-export/{}", stream_name(config)))
        .trim_end_matches('/')
        .to_string()
}

/// Reads the one partition; with `incremental`, its checkpoint (the bound
/// read up to) comes after the last batch.
pub struct QueryReader {
    rows: Option<bigquery::Rows>,
    checkpoint: Option<String>,
}

impl Reader for QueryReader {
    fn next(&mut self) -> Result<Option<Event>> {
        if let Some(rows) = &mut self.rows {
            if let Some(batch) = rows.next_batch()? {
                return Ok(Some(Event::Batch(batch)));
            }
            // Dropped at the end: an export's objects are gone by now.
            self.rows = None;
        }
        Ok(self.checkpoint.take().map(Event::Checkpoint))
    }
}

export_source!(BigQuerySource);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(v: serde_json::Value) -> Config {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_table_needs_its_dataset_and_not_a_query_too() {
        let e = select(&config(serde_json::json!({"table": "t"}))).unwrap_err();
        assert!(e.message.contains("needs `dataset`"), "{}", e.message);
        let e = select(&config(
            serde_json::json!({"table": "t", "dataset": "d", "query": "SELECT 1"}),
        ))
        .unwrap_err();
        assert!(e.message.contains("not both"), "{}", e.message);
    }

    #[test]
    fn incremental_columns_must_be_selected() {
        let e = select(&config(serde_json::json!({
            "table": "t", "dataset": "d", "columns": ["id"],
            "incremental": {"cursor": ["updated_at"]}
        })))
        .unwrap_err();
        assert!(e.message.contains("add `updated_at`"), "{}", e.message);
    }

    #[test]
    fn bounds_are_typed_text_bigquery_reads() {
        use arrow_array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
        use arrow_schema::{Field, TimeUnit};
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("id", DataType::Int64, true),
        ]));
        let row = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from(vec![1_700_000_000_123_456])
                        .with_timezone("UTC"),
                ),
                Arc::new(Int64Array::from(vec![42])),
            ],
        )
        .unwrap();
        let b = bound_of(&row).unwrap();
        assert_eq!(b[0].ty, "TIMESTAMP");
        assert_eq!(b[0].value, "2023-11-14T22:13:20.123456+00:00");
        assert_eq!(
            b[1],
            Bound {
                ty: "INT64".into(),
                value: "42".into()
            }
        );
    }
}
