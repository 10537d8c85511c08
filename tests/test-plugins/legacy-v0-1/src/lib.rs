//! A source built against the frozen `sluice:plugin@0.1.0`, with bindings
//! generated from `wit/deps/sluice-plugin@0.1.0/` and no SDK: what a
//! plugin published before 0.2.0 looks like to the host.
//!
//! It reads `rows` rows (`id`, `word`) split into `partitions`, builds its
//! batches with 0.1.0's `batch.from-json-lines`, checkpoints after every
//! batch (the last id read) and resumes from that checkpoint.

wit_bindgen::generate!({
    path: "../../../wit/deps/sluice-plugin@0.1.0",
    world: "source-plugin",
});

use exports::sluice::plugin::source::{Event, Guest, GuestReader, Partition, StreamInfo, SyncMode};
use sluice::plugin::log::{Level, log};
use sluice::plugin::types::{Batch, Error, ErrorKind, PluginInfo, PluginKind, Schema};

/// Rows per batch (and per checkpoint).
const BATCH_ROWS: u64 = 250;

struct Legacy;

struct Config {
    rows: u64,
    partitions: u64,
}

fn config_error(message: String) -> Error {
    Error {
        kind: ErrorKind::Config,
        message,
    }
}

fn parse(config: &str) -> Result<Config, Error> {
    let value: serde_json::Value =
        serde_json::from_str(config).map_err(|e| config_error(e.to_string()))?;
    let number = |key: &str, default: u64| match value.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| config_error(format!("`{key}` must be a whole number, not {v}"))),
    };
    let partitions = number("partitions", 2)?;
    if partitions == 0 {
        return Err(config_error("partitions must be at least 1".into()));
    }
    Ok(Config {
        rows: number("rows", 1000)?,
        partitions,
    })
}

/// The stream's schema as an IPC stream with no batches.
fn schema_ipc() -> Vec<u8> {
    use arrow_schema::{DataType, Field, Schema as ArrowSchema};
    let schema = ArrowSchema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("word", DataType::Utf8, false),
    ]);
    let mut out = Vec::new();
    let mut writer =
        arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema).expect("a schema encodes");
    writer.finish().expect("a schema encodes");
    drop(writer);
    out
}

impl Guest for Legacy {
    type Reader = LegacyReader;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "legacy-v0-1".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Source,
            description: "A source built against sluice:plugin@0.1.0 (a test plugin)".into(),
            config_schema: r#"{"type":"object","properties":{"rows":{"type":"integer","minimum":0},"partitions":{"type":"integer","minimum":1}},"additionalProperties":false}"#.into(),
            capabilities: vec![],
        }
    }

    fn check(config: String) -> Result<(), Error> {
        parse(&config).map(|_| ())
    }

    fn discover(config: String) -> Result<Vec<StreamInfo>, Error> {
        parse(&config)?;
        Ok(vec![StreamInfo {
            name: "legacy".into(),
            schema: schema_ipc(),
            primary_key: vec!["id".into()],
            cursor_fields: vec![],
            sync_modes: vec![SyncMode::FullRefresh],
        }])
    }

    fn partitions(
        config: String,
        stream: String,
        _state: Option<String>,
    ) -> Result<Vec<Partition>, Error> {
        let config = parse(&config)?;
        let per = config.rows.div_ceil(config.partitions);
        Ok((0..config.partitions)
            .map(|i| {
                let start = (i * per).min(config.rows);
                let end = ((i + 1) * per).min(config.rows);
                Partition {
                    stream: stream.clone(),
                    id: format!("p{i}"),
                    spec: format!("{start},{end}"),
                }
            })
            .collect())
    }
}

struct LegacyReader {
    schema: Schema,
    next: std::cell::Cell<u64>,
    end: u64,
    /// Whether the last event was a batch, so a checkpoint follows it.
    owes_checkpoint: std::cell::Cell<bool>,
}

impl GuestReader for LegacyReader {
    fn open(
        config: String,
        partition: Partition,
        state: Option<String>,
    ) -> Result<exports::sluice::plugin::source::Reader, Error> {
        parse(&config)?;
        let bad_spec = || config_error(format!("bad partition spec `{}`", partition.spec));
        let (start, end) = partition.spec.split_once(',').ok_or_else(bad_spec)?;
        let start: u64 = start.parse().map_err(|_| bad_spec())?;
        let end: u64 = end.parse().map_err(|_| bad_spec())?;
        // The checkpoint is the last id read: resume after it.
        let resume = match state {
            Some(state) => state
                .parse::<u64>()
                .map(|last| last + 1)
                .map_err(|_| config_error(format!("bad state `{state}`")))?,
            None => start,
        };
        log(
            Level::Info,
            &format!("legacy reader {} opened at {resume}", partition.id),
        );
        Ok(exports::sluice::plugin::source::Reader::new(LegacyReader {
            schema: Schema::from_ipc(&schema_ipc())?,
            next: std::cell::Cell::new(resume.max(start)),
            end,
            owes_checkpoint: std::cell::Cell::new(false),
        }))
    }

    fn next(&self) -> Result<Option<Event>, Error> {
        let next = self.next.get();
        if self.owes_checkpoint.replace(false) {
            return Ok(Some(Event::Checkpoint((next - 1).to_string())));
        }
        if next >= self.end {
            return Ok(None);
        }
        let stop = (next + BATCH_ROWS).min(self.end);
        let text: String = (next..stop)
            .map(|id| format!("{{\"id\":{id},\"word\":\"w{id}\"}}\n"))
            .collect();
        let batch = Batch::from_json_lines(&self.schema, &text)?;
        self.next.set(stop);
        self.owes_checkpoint.set(true);
        Ok(Some(Event::Batch(batch)))
    }
}

export!(Legacy);
