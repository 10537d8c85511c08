//! `synthetic`: `rows` rows of 8 columns, the same values the Python
//! `py-synthetic` yields, built with Arrow directly: the Rust line of
//! `cargo xtask bench sdk`.

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
    Batch, Event, Info, Partition, Reader, Result, Source, StreamInfo, SyncMode, export_source,
};

/// Settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Rows to read.
    #[serde(default = "thousand")]
    pub rows: u64,
}

fn thousand() -> u64 {
    1000
}

/// Rows a batch holds, as the Python SDK's default.
const BATCH_ROWS: u64 = 8192;
/// 2026-12-07 in days since 1970-01-01, and 10:00 that day in µs.
const DAY: i32 = 20_794;
const AT_US: i64 = 1_796_637_600_000_000;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("amount", DataType::Decimal128(12, 2), true),
        Field::new("ratio", DataType::Float64, true),
        Field::new("active", DataType::Boolean, true),
        Field::new("day", DataType::Date32, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("note", DataType::Utf8, true),
    ]))
}

/// The plugin.
pub struct Synthetic;

impl Source for Synthetic {
    type Config = Config;
    type Reader = SyntheticReader;

    fn info() -> Info {
        Info {
            name: "synthetic",
            version: "0.1.0",
            description: "Synthetic rows, written in Rust (benchmarks)",
            capabilities: &[],
        }
    }

    fn discover(_config: &Config) -> Result<Vec<StreamInfo>> {
        Ok(vec![StreamInfo {
            name: "synthetic".into(),
            schema: Some(schema()),
            primary_key: vec!["id".into()],
            cursor_fields: vec![],
            sync_modes: vec![SyncMode::FullRefresh],
        }])
    }

    fn open(
        config: Config,
        _partition: Partition,
        _state: Option<String>,
    ) -> Result<SyntheticReader> {
        Ok(SyntheticReader {
            next: 0,
            end: config.rows,
            schema: schema(),
        })
    }
}

/// Reads every row, a batch at a time.
pub struct SyntheticReader {
    next: u64,
    end: u64,
    schema: SchemaRef,
}

impl Reader for SyntheticReader {
    fn next(&mut self) -> Result<Option<Event>> {
        if self.next >= self.end {
            return Ok(None);
        }
        let (lo, hi) = (self.next, (self.next + BATCH_ROWS).min(self.end));
        self.next = hi;
        let n = (hi - lo) as usize;
        let mut id = Int64Builder::with_capacity(n);
        let mut name = StringBuilder::with_capacity(n, n * 12);
        let mut amount = Decimal128Builder::with_capacity(n);
        let mut ratio = Float64Builder::with_capacity(n);
        let mut active = BooleanBuilder::with_capacity(n);
        let mut day = Date32Builder::with_capacity(n);
        let mut at = TimestampMicrosecondBuilder::with_capacity(n);
        let mut note = StringBuilder::with_capacity(n, n);
        for i in lo..hi {
            id.append_value(i as i64);
            name.append_value(format!("name-{i}"));
            amount.append_value(((i % 100_000) * 100 + i % 100) as i128);
            ratio.append_value(i as f64 / 7.0);
            active.append_value(i % 2 == 0);
            day.append_value(DAY);
            at.append_value(AT_US);
            if i % 10 == 0 {
                note.append_null();
            } else {
                note.append_value("x");
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(name.finish()),
            Arc::new(amount.finish().with_precision_and_scale(12, 2)?),
            Arc::new(ratio.finish()),
            Arc::new(active.finish()),
            Arc::new(day.finish()),
            Arc::new(at.finish().with_timezone("UTC")),
            Arc::new(note.finish()),
        ];
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        Ok(Some(Event::Batch(Batch::from_record_batch(&batch)?)))
    }
}

export_source!(Synthetic);
