//! A sink that misbehaves on request: see [`Mode`].

use arrow_schema::SchemaRef;
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_sdk::{Batch, CommitInfo, Info, Result, Sink, Writer, export_sink};

/// What to do with every batch.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    mode: Mode,
}

#[derive(Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    /// Turn every batch into JSON Lines and back through
    /// `batch.from-json-lines`, then count its rows.
    JsonLines,
    /// Panic in `write`.
    Trap,
    /// Sleep 100 s in `write`.
    Sleep,
    /// Report a commit of 0 rows whatever was written.
    Drop,
}

/// The plugin.
pub struct MisbehaveSink;

impl Sink for MisbehaveSink {
    type Config = Config;
    type Writer = Misbehaving;

    fn info() -> Info {
        Info {
            name: "misbehave",
            version: "0.1.0",
            description: "A sink that misbehaves on request (tests only)",
            capabilities: &[],
        }
    }

    fn open(config: Config, _stream: &str, _schema: SchemaRef, _task: &str) -> Result<Misbehaving> {
        Ok(Misbehaving {
            mode: config.mode,
            rows: 0,
        })
    }
}

/// One per task.
pub struct Misbehaving {
    mode: Mode,
    rows: u64,
}

impl Writer for Misbehaving {
    fn write(&mut self, batch: Batch) -> Result<()> {
        match self.mode {
            Mode::JsonLines => {
                let rows = batch.num_rows();
                let text: String = (0..rows).map(|i| format!("{{\"n\": {i}}}\n")).collect();
                let counted =
                    std::sync::Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
                        "n",
                        arrow_schema::DataType::Int64,
                        false,
                    )]));
                let rebuilt = Batch::from_json_lines(&counted, &text)?;
                self.rows += rebuilt.num_rows();
                Ok(())
            }
            Mode::Trap => panic!("misbehave sink: deliberate panic"),
            Mode::Sleep => {
                std::thread::sleep(std::time::Duration::from_secs(100));
                Ok(())
            }
            Mode::Drop => Ok(()),
        }
    }

    fn commit(&mut self) -> Result<CommitInfo> {
        Ok(CommitInfo {
            rows: std::mem::take(&mut self.rows),
            bytes: 0,
            outputs: Vec::new(),
        })
    }

    fn abort(&mut self) {}
}

export_sink!(MisbehaveSink);
