//! A source that misbehaves on request, so tests can check the host survives:
//! `mode` is `ok`, `loop`, `oom`, `trap`, `garbage` or `drift`.

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_sdk::{
    Batch, Error, Event, Info, Partition, Reader, Result, Source, StreamInfo, export_source,
};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    mode: Mode,
}

#[derive(Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// One good batch.
    Ok,
    /// Spin forever inside `next`.
    Loop,
    /// Allocate without bound inside `next`.
    Oom,
    /// Panic inside `next`.
    Trap,
    /// Hand the host bytes that are not Arrow IPC.
    Garbage,
    /// Change the schema between batches.
    Drift,
}

struct Misbehave;

fn ints() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap()
}

fn strings() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["a"]))]).unwrap()
}

impl Source for Misbehave {
    type Config = Config;
    type Reader = MisbehaveReader;

    fn info() -> Info {
        Info {
            name: "misbehave",
            version: "0.1.0",
            description: "A source that misbehaves on request (tests only)",
            capabilities: &[],
        }
    }

    fn discover(_config: &Config) -> Result<Vec<StreamInfo>> {
        Ok(vec![StreamInfo {
            name: "misbehave".into(),
            schema: None,
            primary_key: vec![],
            cursor_fields: vec![],
            sync_modes: vec![sluice_sdk::SyncMode::FullRefresh],
        }])
    }

    fn open(
        config: Config,
        _partition: Partition,
        _state: Option<String>,
    ) -> Result<MisbehaveReader> {
        Ok(MisbehaveReader {
            mode: config.mode,
            calls: 0,
        })
    }
}

struct MisbehaveReader {
    mode: Mode,
    calls: u32,
}

impl Reader for MisbehaveReader {
    fn next(&mut self) -> Result<Option<Event>> {
        self.calls += 1;
        match self.mode {
            Mode::Ok if self.calls == 1 => {
                Ok(Some(Event::Batch(Batch::from_record_batch(&ints())?)))
            }
            Mode::Ok => Ok(None),
            Mode::Loop => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            Mode::Oom => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 16 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Mode::Trap => panic!("misbehave: deliberate panic"),
            Mode::Garbage => {
                use sluice_sdk::__wit::sluice::plugin::types as wit;
                let schema = wit::Schema::from_ipc(&sluice_sdk::encode_schema(&ints().schema()))
                    .map_err(Error::from)?;
                let raw = wit::Batch::from_ipc(&schema, b"\xff\xff\xff\xffnot arrow at all")
                    .map_err(Error::from)?;
                Ok(Some(Event::Batch(unsafe_wrap(raw))))
            }
            Mode::Drift => match self.calls {
                1 => Ok(Some(Event::Batch(Batch::from_record_batch(&ints())?))),
                2 => Ok(Some(Event::Batch(Batch::from_record_batch(&strings())?))),
                _ => Ok(None),
            },
        }
    }
}

fn unsafe_wrap(_raw: sluice_sdk::__wit::sluice::plugin::types::Batch) -> Batch {
    unreachable!("the host refuses garbage IPC, so there is never a batch to wrap")
}

export_source!(Misbehave);
