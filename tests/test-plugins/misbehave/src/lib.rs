//! A source that misbehaves on request, so tests can check the host
//! survives: see [`Mode`] for each way.

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
    /// Bytes for the `huge-*` modes (default 10 MB).
    #[serde(default)]
    bytes: Option<usize>,
}

#[derive(Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
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
    /// Sleep (a blocking WASI poll) for 100 s inside `next`.
    Sleep,
    /// Spin forever inside `discover`.
    DiscoverLoop,
    /// Sleep for 100 s inside `check`.
    CheckSleep,
    /// Build each batch from JSON Lines (`batch.from-json-lines`): two
    /// batches of 3 rows.
    JsonLines,
    /// A non-null column that turns nullable, with nulls, in batch two.
    NullableDrift,
    /// Declare `n: Int64 not null` in `discover`, then send strings.
    LieSchema,
    /// Declare `n: Int64 not null` in `discover`, then send nulls in it.
    LieNulls,
    /// Fail with an error message of `bytes` bytes.
    HugeError,
    /// Log a line of `bytes` bytes, then send one good batch.
    HugeLog,
    /// A checkpoint of `bytes` bytes after one good batch.
    HugeState,
    /// A batch of about `bytes` bytes of text.
    HugeBatch,
    /// Recurse until the stack runs out.
    Recurse,
    /// Call the contract's functions one by one through the host, raw, and
    /// send one row saying what each answered (needs a blob grant holding
    /// `bad.csv`, a CSV file with one invalid row).
    Contract,
}

struct Misbehave;

fn ints() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap()
}

fn nullable_ints() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
    RecordBatch::try_new(
        schema,
        vec![Arc::new(Int64Array::from(vec![Some(4), None, Some(6)]))],
    )
    .unwrap()
}

fn strings() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["a"]))]).unwrap()
}

fn recurse(depth: u64, pad: [u8; 256]) -> u64 {
    let pad = std::hint::black_box(pad);
    if depth == u64::MAX {
        return pad[0] as u64;
    }
    recurse(depth + 1, pad) + std::hint::black_box(pad[(depth % 256) as usize]) as u64
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

    fn check(config: &Config) -> Result<()> {
        if let Mode::CheckSleep = config.mode {
            std::thread::sleep(std::time::Duration::from_secs(100));
        }
        Ok(())
    }

    fn discover(config: &Config) -> Result<Vec<StreamInfo>> {
        let schema = match config.mode {
            Mode::DiscoverLoop => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            Mode::LieSchema | Mode::LieNulls => Some(ints().schema()),
            _ => None,
        };
        Ok(vec![StreamInfo {
            name: "misbehave".into(),
            schema,
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
            bytes: config.bytes.unwrap_or(10 << 20),
            calls: 0,
        })
    }
}

struct MisbehaveReader {
    mode: Mode,
    bytes: usize,
    calls: u32,
}

impl Reader for MisbehaveReader {
    fn next(&mut self) -> Result<Option<Event>> {
        self.calls += 1;
        let batch = |b: RecordBatch| Ok(Some(Event::Batch(Batch::from_record_batch(&b)?)));
        match self.mode {
            Mode::Ok | Mode::DiscoverLoop | Mode::CheckSleep if self.calls == 1 => batch(ints()),
            Mode::Ok | Mode::DiscoverLoop | Mode::CheckSleep => Ok(None),
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
                use sluice_sdk::__wit::sluice::plugin0_2_0::types as wit;
                let schema = wit::Schema::from_ipc(&sluice_sdk::encode_schema(&ints().schema()))
                    .map_err(Error::from)?;
                let raw = wit::Batch::from_ipc(&schema, b"\xff\xff\xff\xffnot arrow at all")
                    .map_err(Error::from)?;
                Ok(Some(Event::Batch(unsafe_wrap(raw))))
            }
            Mode::Drift => match self.calls {
                1 => batch(ints()),
                2 => batch(strings()),
                _ => Ok(None),
            },
            Mode::Sleep => {
                std::thread::sleep(std::time::Duration::from_secs(100));
                batch(ints())
            }
            Mode::JsonLines if self.calls <= 2 => {
                let schema = Arc::new(Schema::new(vec![
                    Field::new("n", DataType::Int64, false),
                    Field::new("s", DataType::Utf8, true),
                ]));
                let base = (self.calls as i64 - 1) * 3;
                let text: String = (0..3)
                    .map(|i| format!("{{\"n\": {}, \"s\": \"row {}\"}}\n", base + i, base + i))
                    .collect();
                Ok(Some(Event::Batch(Batch::from_json_lines(&schema, &text)?)))
            }
            Mode::JsonLines => Ok(None),
            Mode::NullableDrift => match self.calls {
                1 => batch(ints()),
                2 => batch(nullable_ints()),
                _ => Ok(None),
            },
            Mode::LieSchema => match self.calls {
                1 => batch(strings()),
                _ => Ok(None),
            },
            Mode::LieNulls => match self.calls {
                1 => batch(nullable_ints()),
                _ => Ok(None),
            },
            Mode::HugeError => Err(Error::data("x".repeat(self.bytes))),
            Mode::HugeLog => match self.calls {
                1 => {
                    sluice_sdk::log::warn(&"y".repeat(self.bytes));
                    batch(ints())
                }
                _ => Ok(None),
            },
            Mode::HugeBatch => match self.calls {
                1 => {
                    let schema =
                        Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, false)]));
                    let text = StringArray::from(vec!["w".repeat(self.bytes)]);
                    batch(RecordBatch::try_new(schema, vec![Arc::new(text)])?)
                }
                _ => Ok(None),
            },
            Mode::HugeState => match self.calls {
                1 => batch(ints()),
                2 => Ok(Some(Event::Checkpoint("z".repeat(self.bytes)))),
                _ => Ok(None),
            },
            Mode::Recurse => Ok(Some(Event::Checkpoint(
                recurse(0, [self.calls as u8; 256]).to_string(),
            ))),
            Mode::Contract if self.calls == 1 => batch(contract()?),
            Mode::Contract => Ok(None),
        }
    }
}

/// Each contract function called raw, its answer checked where the plugin
/// can: one row of what was seen, for the host-side test to assert.
fn contract() -> Result<RecordBatch> {
    use sluice_sdk::__wit::sluice::plugin0_2_0::{arrays, blob, types as wit};
    let sample = ints();
    let ipc = sluice_sdk::encode_schema(&sample.schema());
    // schema.from-ipc, schema.to-ipc: the host hands back what it was given.
    let schema = wit::Schema::from_ipc(&ipc).map_err(Error::from)?;
    let schema_round_trip = sluice_sdk::decode_schema(&schema.to_ipc())? == sample.schema();
    // batch.from-ipc, batch.to-ipc, arrays.to-arrays, batch.slice, num-rows.
    let host = Batch::from_record_batch(&sample)?;
    let rows_back = host.to_record_batch()? == sample;
    let raw = wit::Batch::from_ipc(
        &schema,
        &sluice_sdk::types::ipc::encode_batch_messages(&sample)
            .map_err(|e| Error::internal(e.to_string()))?,
    )
    .map_err(Error::from)?;
    let ipc_back = !raw.to_ipc().is_empty() && raw.num_rows() == 3;
    let laid_out = arrays::to_arrays(&raw);
    let arrays_back = laid_out.rows == 3 && laid_out.arrays.len() == 1;
    let sliced = raw.slice(1, 10).num_rows();
    // blob.list, and codec.decoder.rejected on a file with a bad row.
    let listed = blob::list("*.csv", None).map_err(Error::from)?.len() as i64;
    let decoder = sluice_sdk::codec::Decoder::open(
        "bad.csv",
        &sluice_sdk::serde_json::json!({"format": "csv", "on_invalid": "skip", "columns": {"n": "int64"}}),
    )?;
    let mut good = 0;
    while let Some(b) = decoder.next_batch()? {
        good += b.num_rows();
    }
    let rejected = decoder.rejected() as i64;
    let schema = Arc::new(Schema::new(vec![
        Field::new("schema_round_trip", DataType::Boolean, false),
        Field::new("rows_back", DataType::Boolean, false),
        Field::new("ipc_back", DataType::Boolean, false),
        Field::new("arrays_back", DataType::Boolean, false),
        Field::new("sliced", DataType::Int64, false),
        Field::new("listed", DataType::Int64, false),
        Field::new("good", DataType::Int64, false),
        Field::new("rejected", DataType::Int64, false),
    ]));
    let flag =
        |b: bool| Arc::new(arrow_array::BooleanArray::from(vec![b])) as arrow_array::ArrayRef;
    let int = |n: i64| Arc::new(Int64Array::from(vec![n])) as arrow_array::ArrayRef;
    Ok(RecordBatch::try_new(
        schema,
        vec![
            flag(schema_round_trip),
            flag(rows_back),
            flag(ipc_back),
            flag(arrays_back),
            int(sliced as i64),
            int(listed),
            int(good as i64),
            int(rejected),
        ],
    )?)
}

fn unsafe_wrap(_raw: sluice_sdk::__wit::sluice::plugin0_2_0::types::Batch) -> Batch {
    unreachable!("the host refuses garbage IPC, so there is never a batch to wrap")
}

export_source!(Misbehave);
