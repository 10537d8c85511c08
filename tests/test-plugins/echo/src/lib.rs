//! `echo`: a row-wise filter that copies every batch into the plugin and
//! hands it back, so a test can check that any Arrow data crosses both
//! ways unchanged (`arrays.to-arrays` in, `batch.from-ipc` out).
//!
//! With `via: json` it hands each batch back the way a plugin without
//! Arrow would: the host writes it as JSON Lines (`batch.to-json-lines`)
//! and reads it back against a schema the plugin rebuilt from the input's
//! fields (`schema.fields`, `schema.from-fields`), so a test can check that
//! the JSON round trip keeps every value. `via: json-bytes` does the same
//! with the text as UTF-8 bytes (`batch.to-json-bytes`,
//! `batch.from-json-bytes`), the way the JavaScript SDK hands it over, and
//! `via: columns` with columns of plain values (`batch.to-columns`,
//! `batch.from-columns`), and `via: packed-columns` with them packed one
//! string a column (`batch.to-columns` with `packed`), the way the Python
//! SDK does.

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_sdk::arrow_array::RecordBatch;
use sluice_sdk::arrow_schema::SchemaRef;
use sluice_sdk::{Batch, Filter, Info, Result, Transformer, export_filter};

/// Settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How batches come back: `arrays` (Arrow buffers, the default),
    /// `json` (JSON Lines through the host), `json-bytes` (the same as
    /// UTF-8 bytes), `columns` (columns of plain values) or
    /// `packed-columns` (the same, one string a column).
    #[serde(default)]
    pub via: Via,
}

/// How a batch is handed back.
#[derive(Deserialize, JsonSchema, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// As Arrow IPC.
    #[default]
    Arrays,
    /// As JSON Lines, against a schema rebuilt from fields.
    Json,
    /// As JSON Lines in UTF-8 bytes, against a schema rebuilt from fields.
    JsonBytes,
    /// As columns of plain values, against a schema rebuilt from fields.
    Columns,
    /// As columns packed one string each, against a schema rebuilt from fields.
    PackedColumns,
}

/// The plugin.
pub struct Echo;

impl Filter for Echo {
    type Config = Config;
    type Transformer = EchoTransformer;

    fn info() -> Info {
        Info {
            name: "echo",
            version: "0.1.0",
            description: "Hands every batch back after copying it in (tests only)",
            capabilities: &[],
        }
    }

    fn open(config: Config, input: SchemaRef) -> Result<EchoTransformer> {
        let json_schema = match config.via {
            Via::Arrays => None,
            Via::Json | Via::JsonBytes | Via::Columns | Via::PackedColumns => {
                Some(rebuilt_from_fields(&input)?)
            }
        };
        Ok(EchoTransformer {
            input,
            json_schema,
            via: config.via,
        })
    }
}

/// `input` as the host describes it in fields, built again from them.
#[cfg(target_arch = "wasm32")]
fn rebuilt_from_fields(input: &SchemaRef) -> Result<SchemaRef> {
    use sluice_sdk::__wit::sluice::plugin0_2_0::types as wit;
    let described = wit::Schema::from_ipc(&sluice_sdk::encode_schema(input))?;
    let rebuilt = wit::Schema::from_fields(&described.fields())?;
    sluice_sdk::decode_schema(&rebuilt.to_ipc())
}

#[cfg(not(target_arch = "wasm32"))]
fn rebuilt_from_fields(input: &SchemaRef) -> Result<SchemaRef> {
    Ok(input.clone())
}

/// One per task.
pub struct EchoTransformer {
    input: SchemaRef,
    /// With any `via` but `arrays`, the schema the rows are read
    /// back against.
    json_schema: Option<SchemaRef>,
    via: Via,
}

impl Transformer for EchoTransformer {
    fn output_schema(&self) -> SchemaRef {
        self.input.clone()
    }

    fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>> {
        match &self.json_schema {
            None => Ok(vec![batch]),
            Some(schema) => {
                let batch = Batch::from_record_batch(&batch)?;
                let back = match self.via {
                    Via::JsonBytes => Batch::from_json_bytes(schema, &batch.to_json_bytes()?)?,
                    Via::Columns => Batch::from_columns(schema, batch.to_columns()?)?,
                    Via::PackedColumns => Batch::from_columns(schema, batch.to_packed_columns()?)?,
                    _ => Batch::from_json_lines(schema, &batch.to_json_lines()?)?,
                };
                Ok(vec![back.to_record_batch()?])
            }
        }
    }
}

export_filter!(Echo);
