//! A row-wise filter that misbehaves on request: see [`Mode`].

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_sdk::{Batch, Filter, Info, Result, Transformer, export_filter};

/// What to do with every batch.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    mode: Mode,
}

#[derive(Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    /// Rebuild every batch through `batch.from-json-lines` (one column,
    /// `n: Int64`): the host does the work.
    JsonLines,
    /// Declare `n: Int64 not null`, then return nulls in it.
    LieNulls,
    /// Panic in `process`.
    Trap,
    /// Sleep 100 s in `process`.
    Sleep,
}

/// The plugin.
pub struct MisbehaveFilter;

impl Filter for MisbehaveFilter {
    type Config = Config;
    type Transformer = Misbehaving;

    fn info() -> Info {
        Info {
            name: "misbehave",
            version: "0.1.0",
            description: "A filter that misbehaves on request (tests only)",
            capabilities: &[],
        }
    }

    fn open(config: Config, _input: SchemaRef) -> Result<Misbehaving> {
        Ok(Misbehaving {
            mode: config.mode,
            output: Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)])),
        })
    }
}

/// One per task.
pub struct Misbehaving {
    mode: Mode,
    output: SchemaRef,
}

impl Transformer for Misbehaving {
    fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>> {
        let rows = batch.num_rows();
        match self.mode {
            Mode::JsonLines => {
                let text: String = (0..rows).map(|i| format!("{{\"n\": {i}}}\n")).collect();
                let built = Batch::from_json_lines(&self.output, &text)?;
                Ok(vec![built.to_record_batch()?])
            }
            Mode::LieNulls => {
                let nullable = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
                let values: Int64Array = (0..rows)
                    .map(|i| (i % 2 == 0).then_some(i as i64))
                    .collect();
                Ok(vec![RecordBatch::try_new(
                    nullable,
                    vec![Arc::new(values)],
                )?])
            }
            Mode::Trap => panic!("misbehave filter: deliberate panic"),
            Mode::Sleep => {
                std::thread::sleep(std::time::Duration::from_secs(100));
                Ok(Vec::new())
            }
        }
    }
}

export_filter!(MisbehaveFilter);
