//! `generate`: deterministic synthetic rows.
//!
//! The workhorse of tests and benchmarks: the same `seed` and row range give
//! the same values on any machine, partitions generate disjoint row ranges
//! in parallel, and incremental runs continue from the last row generated.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_sdk::{
    Batch, Error, Event, Info, Partition, Reader, Result, Source, StreamInfo, SyncMode,
    export_source,
};

/// The generator's config.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// Changing these changes how, not what, it reads or writes: saved state
// is kept (the host leaves them out of the state key).
#[schemars(extend("x-sluice-state-ignores" = ["rows", "batch_size"]))]
pub struct Config {
    /// Rows in the stream. Raise it and run an incremental job again: only
    /// the new rows are generated.
    #[serde(default = "default_rows")]
    pub rows: u64,
    /// Seed for the values.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Rows per batch.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub batch_size: u64,
    /// Parallel partitions (row ranges).
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1, max = 1024))]
    pub partitions: u64,
    /// Stream name.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Columns after the `id` column (0, 1, 2, …). Default: a lineitem-like mix.
    #[serde(default = "default_columns")]
    pub columns: Vec<Column>,
}

/// One generated column.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Value type.
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// Distinct values (for int64 and string: values are `0..cardinality`).
    #[serde(default)]
    pub cardinality: Option<u64>,
    /// Fraction of nulls, 0 to 1.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub null_ratio: f64,
}

/// Types the generator makes.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// 64-bit integers.
    Int64,
    /// Doubles in [0, 1000).
    Float64,
    /// decimal(15,2) amounts.
    Decimal,
    /// Short words.
    String,
    /// true / false.
    Bool,
    /// Dates from 1992-01-01 on.
    Date,
    /// Microsecond timestamps in 2024.
    Timestamp,
}

fn default_rows() -> u64 {
    1000
}
fn default_seed() -> u64 {
    42
}
fn default_batch_size() -> u64 {
    8192
}
fn default_partitions() -> u64 {
    1
}
fn default_stream() -> String {
    "generated".into()
}
fn col(name: &str, kind: ColumnType, cardinality: Option<u64>) -> Column {
    Column {
        name: name.into(),
        kind,
        cardinality,
        null_ratio: 0.0,
    }
}
fn default_columns() -> Vec<Column> {
    vec![
        col("order_key", ColumnType::Int64, Some(1_500_000)),
        col("quantity", ColumnType::Decimal, None),
        col("price", ColumnType::Decimal, None),
        col("discount", ColumnType::Float64, None),
        col("return_flag", ColumnType::String, Some(3)),
        col("ship_date", ColumnType::Date, None),
        col("comment", ColumnType::String, Some(100_000)),
    ]
}

/// splitmix64: a fast, well-mixed hash of (seed, column, row).
fn mix(seed: u64, column: u64, row: u64) -> u64 {
    let mut z = seed
        .wrapping_add(column.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(row.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const WORDS: [&str; 16] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa",
];

/// The schema for a config.
pub fn schema(config: &Config) -> SchemaRef {
    let mut fields = vec![Field::new("id", DataType::Int64, false)];
    for c in &config.columns {
        let dt = match c.kind {
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Decimal => DataType::Decimal128(15, 2),
            ColumnType::String => DataType::Utf8,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        };
        fields.push(Field::new(&c.name, dt, c.null_ratio > 0.0));
    }
    Arc::new(Schema::new(fields))
}

/// Build the rows `start..end` (a pure function of config and range).
///
/// # Errors
/// Only if Arrow refuses the arrays (a bug).
pub fn generate(config: &Config, schema: &SchemaRef, start: u64, end: u64) -> Result<RecordBatch> {
    let n = (end - start) as usize;
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(config.columns.len() + 1);
    columns.push(Arc::new(arrow_array::Int64Array::from_iter_values(
        (start..end).map(|r| r as i64),
    )));
    for (ci, c) in config.columns.iter().enumerate() {
        let ci = ci as u64 + 1;
        let null_cut = (c.null_ratio.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
        let is_null = |row: u64| null_cut > 0 && mix(config.seed ^ 0xA5A5, ci, row) < null_cut;
        let h = |row: u64| mix(config.seed, ci, row);
        let array: ArrayRef = match c.kind {
            ColumnType::Int64 => {
                let card = c.cardinality.unwrap_or(u64::MAX);
                let mut b = Int64Builder::with_capacity(n);
                for row in start..end {
                    if is_null(row) {
                        b.append_null()
                    } else {
                        b.append_value((h(row) % card.max(1)) as i64)
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Float64 => {
                let mut b = Float64Builder::with_capacity(n);
                for row in start..end {
                    if is_null(row) {
                        b.append_null()
                    } else {
                        b.append_value((h(row) >> 11) as f64 / (1u64 << 53) as f64 * 1000.0)
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Decimal => {
                let mut b = Decimal128Builder::with_capacity(n);
                for row in start..end {
                    if is_null(row) {
                        b.append_null()
                    } else {
                        b.append_value((h(row) % 10_000_000) as i128)
                    }
                }
                Arc::new(b.finish().with_precision_and_scale(15, 2)?)
            }
            ColumnType::String => {
                let card = c.cardinality.unwrap_or(u64::MAX).max(1);
                let mut b = StringBuilder::with_capacity(n, n * 12);
                for row in start..end {
                    if is_null(row) {
                        b.append_null()
                    } else {
                        let v = h(row) % card;
                        let word = WORDS[(v % 16) as usize];
                        if card <= 16 {
                            b.append_value(word)
                        } else {
                            b.append_value(format!("{word}-{v}"))
                        }
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Bool => {
                let mut b = BooleanBuilder::with_capacity(n);
                for row in start..end {
                    if is_null(row) {
                        b.append_null()
                    } else {
                        b.append_value(h(row) & 1 == 1)
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Date => {
                let mut b = Date32Builder::with_capacity(n);
                for row in start..end {
                    if is_null(row) {
                        b.append_null()
                    } else {
                        // 1992-01-01 is day 8035 since the epoch; ~7 years on.
                        b.append_value(8035 + (h(row) % 2557) as i32)
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Timestamp => {
                let mut b = TimestampMicrosecondBuilder::with_capacity(n);
                const Y2024: i64 = 1_704_067_200_000_000;
                for row in start..end {
                    if is_null(row) {
                        b.append_null()
                    } else {
                        b.append_value(Y2024 + (h(row) % 31_536_000_000_000) as i64)
                    }
                }
                Arc::new(b.finish())
            }
        };
        columns.push(array);
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Row ranges not yet covered by saved partition states.
///
/// States are `{"<start>-<end>": "<next row>"}`: each partition generated
/// `start..next`. What is left of `0..rows` is split into `parts` ranges.
pub fn pending_ranges(rows: u64, parts: u64, state: Option<&str>) -> Result<Vec<(u64, u64)>> {
    let mut covered: Vec<(u64, u64)> = Vec::new();
    if let Some(state) = state {
        let map: std::collections::BTreeMap<String, String> = serde_json::from_str(state)
            .map_err(|e| Error::internal(format!("saved state is not a JSON object: {e}")))?;
        for (id, next) in map {
            let (start, _) = parse_range(&id)?;
            let next: u64 = next
                .parse()
                .map_err(|_| Error::internal(format!("bad saved state {next:?} for {id}")))?;
            covered.push((start, next));
        }
    }
    covered.sort();
    let mut gaps = Vec::new();
    let mut at = 0;
    for (s, e) in covered {
        if s > at {
            gaps.push((at, s.min(rows)));
        }
        at = at.max(e);
    }
    if at < rows {
        gaps.push((at, rows));
    }
    gaps.retain(|(s, e)| s < e);
    let total: u64 = gaps.iter().map(|(s, e)| e - s).sum();
    if total == 0 {
        return Ok(Vec::new());
    }
    let per = total.div_ceil(parts.max(1));
    let mut out = Vec::new();
    for (mut s, e) in gaps {
        while s < e {
            let end = (s + per).min(e);
            out.push((s, end));
            s = end;
        }
    }
    Ok(out)
}

fn parse_range(id: &str) -> Result<(u64, u64)> {
    let bad = || Error::internal(format!("bad partition id {id:?}: expected <start>-<end>"));
    let (s, e) = id.split_once('-').ok_or_else(bad)?;
    Ok((s.parse().map_err(|_| bad())?, e.parse().map_err(|_| bad())?))
}

/// The plugin.
pub struct Generate;

impl Source for Generate {
    type Config = Config;
    type Reader = RangeReader;

    fn info() -> Info {
        Info {
            name: "generate",
            version: env!("CARGO_PKG_VERSION"),
            description: "Deterministic synthetic rows for tests and benchmarks",
            capabilities: &[],
        }
    }

    fn discover(config: &Config) -> Result<Vec<StreamInfo>> {
        Ok(vec![StreamInfo {
            name: config.stream.clone(),
            schema: Some(schema(config)),
            primary_key: vec!["id".into()],
            cursor_fields: vec!["id".into()],
            sync_modes: vec![SyncMode::FullRefresh, SyncMode::Incremental],
        }])
    }

    fn partitions(config: &Config, stream: &str, state: Option<&str>) -> Result<Vec<Partition>> {
        if stream != config.stream {
            return Err(Error::config(format!(
                "no stream {stream:?}; this source has {:?}",
                config.stream
            )));
        }
        Ok(pending_ranges(config.rows, config.partitions, state)?
            .into_iter()
            .map(|(s, e)| Partition {
                stream: stream.into(),
                id: format!("{s}-{e}"),
                spec: String::new(),
            })
            .collect())
    }

    fn open(config: Config, partition: Partition, state: Option<String>) -> Result<RangeReader> {
        let (start, end) = parse_range(&partition.id)?;
        let next = match state {
            Some(s) => s
                .parse()
                .map_err(|_| Error::internal(format!("bad saved state {s:?}")))?,
            None => start,
        };
        let schema = schema(&config);
        Ok(RangeReader {
            config,
            schema,
            next,
            end,
            checkpoint_due: false,
        })
    }
}

/// Generates one row range, a batch at a time, with a checkpoint after each.
pub struct RangeReader {
    config: Config,
    schema: SchemaRef,
    next: u64,
    end: u64,
    checkpoint_due: bool,
}

impl Reader for RangeReader {
    fn next(&mut self) -> Result<Option<Event>> {
        if self.checkpoint_due {
            self.checkpoint_due = false;
            return Ok(Some(Event::Checkpoint(self.next.to_string())));
        }
        if self.next >= self.end {
            return Ok(None);
        }
        let stop = (self.next + self.config.batch_size).min(self.end);
        let batch = generate(&self.config, &self.schema, self.next, stop)?;
        self.next = stop;
        self.checkpoint_due = true;
        Ok(Some(Event::Batch(Batch::from_record_batch(&batch)?)))
    }
}

export_source!(Generate);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_what_is_missing() {
        assert_eq!(pending_ranges(10, 2, None).unwrap(), [(0, 5), (5, 10)]);
        let state = r#"{"0-5":"5","5-10":"7"}"#;
        assert_eq!(pending_ranges(10, 1, Some(state)).unwrap(), [(7, 10)]);
        assert_eq!(pending_ranges(12, 1, Some(state)).unwrap(), [(7, 12)]);
        let done = r#"{"0-10":"10"}"#;
        assert!(pending_ranges(10, 4, Some(done)).unwrap().is_empty());
        // A partition that never started leaves its range pending.
        let partial = r#"{"5-10":"10"}"#;
        assert_eq!(pending_ranges(10, 1, Some(partial)).unwrap(), [(0, 5)]);
    }

    #[test]
    fn values_are_deterministic_and_range_independent() {
        let config: Config = serde_json::from_str(r#"{"rows": 100}"#).unwrap();
        let schema = schema(&config);
        let whole = generate(&config, &schema, 0, 100).unwrap();
        let tail = generate(&config, &schema, 40, 100).unwrap();
        assert_eq!(whole.slice(40, 60), tail);
    }

    #[test]
    fn resumes_from_saved_state() {
        use sluice_sdk::testing::Harness;
        let harness = Harness::new();
        let config = serde_json::json!({"rows": 1000, "batch_size": 300, "partitions": 2});
        let first = harness.read::<Generate>(config.clone()).unwrap();
        assert_eq!(first.rows(), 1000);
        // The last checkpoint of each partition is its saved state.
        let state: std::collections::BTreeMap<String, String> =
            first.checkpoints.into_iter().collect();
        let grown = serde_json::json!({"rows": 1200, "batch_size": 300, "partitions": 2});
        let next = harness
            .read_with_state::<Generate>(grown, Some(&state))
            .unwrap();
        assert_eq!(next.rows(), 200);
        let ids = next.batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .unwrap();
        assert_eq!(ids.value(0), 1000);
    }
}
