//! `echo`: a row-wise filter that copies every batch into the plugin and
//! hands it back, so a test can check that any Arrow data crosses both
//! ways unchanged (`arrays.to-arrays` in, `batch.from-ipc` out).

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_sdk::arrow_array::RecordBatch;
use sluice_sdk::arrow_schema::SchemaRef;
use sluice_sdk::{Filter, Info, Result, Transformer, export_filter};

/// No settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

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

    fn open(_config: Config, input: SchemaRef) -> Result<EchoTransformer> {
        Ok(EchoTransformer { input })
    }
}

/// One per task.
pub struct EchoTransformer {
    input: SchemaRef,
}

impl Transformer for EchoTransformer {
    fn output_schema(&self) -> SchemaRef {
        self.input.clone()
    }

    fn process(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>> {
        Ok(vec![batch])
    }
}

export_filter!(Echo);
