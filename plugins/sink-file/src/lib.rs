//! `file`: write CSV, JSON Lines or Parquet files into a granted directory
//! or S3 prefix.
//!
//! Output is atomic: each file is written *staged* (a hidden temporary file
//! locally, an S3 multipart upload left open) and published only when the
//! task commits, so a failed or killed run leaves no half-written file where
//! a reader would find it, and nothing is copied at commit. Files split by
//! rows or bytes; every task writes its own files.

use arrow_schema::SchemaRef;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_sdk::codec::Encoder;
use sluice_sdk::{Batch, CommitInfo, Error, Info, Result, Sink, Writer, blob, export_sink};

use sluice_sdk::types::{Compression, FileFormat as Format};

/// The file sink's config.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// Changing these changes how, not what, it reads or writes: saved state
// is kept (the host leaves them out of the state key).
#[schemars(extend("x-sluice-state-ignores" = ["compression", "level", "row_group_rows", "max_rows_per_file", "max_bytes_per_file"]))]
pub struct Config {
    /// Output path relative to the granted directory or S3 prefix. `{stream}`, `{task}`
    /// and `{part}` are replaced; without `{task}`/`{part}`, files other than
    /// the first get `-<task>-<part>` before the extension.
    pub path: String,
    /// The format; by default from the path's extension.
    #[serde(default)]
    pub format: Option<Format>,
    /// CSV/JSON: `none`, `gzip`, `zstd` (default from the extension).
    /// Parquet: `none`, `snappy`, `gzip`, `zstd` (default `zstd`).
    #[serde(default)]
    pub compression: Option<String>,
    /// Compression level.
    #[serde(default)]
    pub level: Option<i32>,
    /// CSV: write a header line (default true).
    #[serde(default)]
    pub header: Option<bool>,
    /// CSV: delimiter (default `,`).
    #[serde(default)]
    pub delimiter: Option<String>,
    /// Parquet: rows per row group.
    #[serde(default)]
    pub row_group_rows: Option<u64>,
    /// What to do when an output file already exists: `append` (default)
    /// keeps it and writes the new file under the next free name
    /// (`x-1.csv`, `x-2.csv`, …; with `{part}` in the path, the next part
    /// number), so incremental runs never lose earlier output; `overwrite`
    /// replaces it.
    #[serde(default)]
    pub mode: Mode,
    /// Start a new file after this many rows.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_rows_per_file: Option<u64>,
    /// Start a new file after about this many bytes (checked between batches).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_bytes_per_file: Option<u64>,
}

/// What to do with an existing output file.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Keep it; write under the next free name.
    #[default]
    Append,
    /// Replace it.
    Overwrite,
}

/// The first of `path`, `stem-1.ext`, `stem-2.ext`, … that does not exist.
fn free_name(path: &str) -> Result<String> {
    if blob::stat(path)?.is_none() {
        return Ok(path.to_string());
    }
    let (stem, ext) = split_ext(path);
    for n in 1.. {
        let candidate = format!("{stem}-{n}{ext}");
        if blob::stat(&candidate)?.is_none() {
            return Ok(candidate);
        }
    }
    unreachable!("some name is free")
}

/// The first part number of task `task` with no file yet. Parts are
/// published in order, so the ones that exist are `0..k`: a task run again
/// (after a failure, or on another worker after one was lost) goes on with
/// the names its first try would have used, and a later incremental run
/// goes on after the last. Found in O(log k) `stat`s.
fn first_free_part(template: &str, stream: &str, task: &str) -> Result<u32> {
    let exists = |n: u32| -> Result<bool> {
        Ok(blob::stat(&output_path(template, stream, task, n))?.is_some())
    };
    if !exists(0)? {
        return Ok(0);
    }
    let (mut lo, mut hi) = (0u32, 1u32);
    while exists(hi)? {
        lo = hi;
        hi = hi
            .checked_mul(2)
            .ok_or_else(|| Error::config("too many parts"))?;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if exists(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(hi)
}

/// Split `name` into (stem, extension-with-dot), the extension starting at
/// the first dot of the file name: `a/b.csv.gz` → (`a/b`, `.csv.gz`).
fn split_ext(path: &str) -> (&str, &str) {
    let file_start = path.rfind('/').map(|i| i + 1).unwrap_or(0);
    match path[file_start..].find('.') {
        Some(dot) if dot > 0 => path.split_at(file_start + dot),
        _ => (path, ""),
    }
}

/// The final name of part `part` of task `task`.
pub fn output_path(template: &str, stream: &str, task: &str, part: u32) -> String {
    let has_placeholders = template.contains("{task}") || template.contains("{part}");
    let path = template
        .replace("{stream}", stream)
        .replace("{task}", task)
        .replace("{part}", &format!("{part:03}"));
    if has_placeholders || (task == "0" && part == 0) {
        path
    } else {
        let (stem, ext) = split_ext(&path);
        format!("{stem}-{task}-{part:03}{ext}")
    }
}

fn format_of(config: &Config) -> Result<Format> {
    if let Some(f) = config.format {
        return Ok(f);
    }
    Format::from_path(&config.path).ok_or_else(|| {
        Error::config(format!(
            "sink.config.format: cannot tell the format of {:?} from its extension; set format: csv, json or parquet",
            config.path
        ))
    })
}

fn encoder_options(config: &Config) -> Result<Value> {
    let format = format_of(config)?;
    let compression = match (&config.compression, format) {
        (Some(c), _) => c.clone(),
        (None, Format::Parquet) => "zstd".into(),
        (None, _) => match Compression::from_path(&config.path) {
            Compression::Gzip => "gzip".into(),
            Compression::Zstd => "zstd".into(),
            _ => "none".into(),
        },
    };
    let mut o = json!({
        "format": format.as_str(),
        "compression": compression,
        "staged": true,
    });
    let m = o.as_object_mut().expect("object");
    if let Some(l) = config.level {
        m.insert("level".into(), l.into());
    }
    if let Some(h) = config.header {
        m.insert("header".into(), h.into());
    }
    if let Some(d) = &config.delimiter {
        m.insert("delimiter".into(), d.clone().into());
    }
    if let Some(r) = config.row_group_rows {
        m.insert("row_group_rows".into(), r.into());
    }
    Ok(o)
}

/// The plugin.
pub struct FileSink;

impl Sink for FileSink {
    type Config = Config;
    type Writer = FileWriter;

    fn info() -> Info {
        Info {
            name: "file",
            version: env!("CARGO_PKG_VERSION"),
            description: "CSV, JSON Lines or Parquet files, written atomically, split by size",
            capabilities: &["blob", "codec"],
        }
    }

    fn check(config: &Config) -> Result<()> {
        encoder_options(config)?;
        // The output path must stay inside the grant, as a run would find:
        // the host resolves it the same way for `stat` as for a write.
        let sample = output_path(&config.path, "stream", "0", 1);
        blob::stat(&sample).map_err(|e| {
            Error::new(
                e.kind,
                format!("sink.config.path {:?}: {}", config.path, e.message),
            )
        })?;
        // The directory must take a write: probe it, and leave nothing.
        let probe = ".sluice-check";
        blob::write(probe, b"")?;
        blob::delete(probe)
    }

    fn open(config: Config, stream: &str, schema: SchemaRef, task: &str) -> Result<FileWriter> {
        let options = encoder_options(&config)?;
        let parts = match config.mode {
            Mode::Append if config.path.contains("{part}") => {
                first_free_part(&config.path, stream, task)?
            }
            _ => 0,
        };
        Ok(FileWriter {
            config,
            options,
            stream: stream.into(),
            task: task.into(),
            schema,
            current: None,
            finished: Vec::new(),
            parts,
            committed: false,
            rows: 0,
            bytes: 0,
        })
    }
}

/// One file being written.
struct Part {
    encoder: Encoder,
    path: String,
    rows: u64,
}

/// Writes one task's files.
pub struct FileWriter {
    config: Config,
    options: Value,
    stream: String,
    task: String,
    schema: SchemaRef,
    current: Option<Part>,
    /// Closed parts, staged until the commit publishes them.
    finished: Vec<String>,
    /// Parts opened so far in this task (their numbers never repeat).
    parts: u32,
    /// Whether an earlier commit of this task wrote a file.
    committed: bool,
    rows: u64,
    bytes: u64,
}

impl FileWriter {
    fn next_part(&mut self) -> Result<Part> {
        let n = self.parts;
        self.parts += 1;
        let path = output_path(&self.config.path, &self.stream, &self.task, n);
        let path = match self.config.mode {
            Mode::Append => free_name(&path)?,
            Mode::Overwrite => path,
        };
        let encoder = Encoder::create(&path, &self.schema, &self.options)?;
        Ok(Part {
            encoder,
            path,
            rows: 0,
        })
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some(part) = self.current.take() {
            self.bytes += part.encoder.finish()?;
            self.finished.push(part.path);
        }
        Ok(())
    }
}

impl Writer for FileWriter {
    fn write(&mut self, batch: Batch) -> Result<()> {
        let total = batch.num_rows();
        let mut offset = 0;
        // Split a batch that would overflow `max_rows_per_file` exactly at
        // the limit (a zero-copy slice in the host).
        while offset < total || total == 0 {
            let full = match &self.current {
                Some(p) => {
                    self.config.max_rows_per_file.is_some_and(|m| p.rows >= m)
                        || self
                            .config
                            .max_bytes_per_file
                            .is_some_and(|m| p.encoder.bytes_written() >= m)
                }
                None => false,
            };
            if full {
                self.close_current()?;
            }
            if self.current.is_none() {
                let part = self.next_part()?;
                self.current = Some(part);
            }
            let part = self.current.as_mut().expect("just opened");
            let room = self
                .config
                .max_rows_per_file
                .map(|m| m.saturating_sub(part.rows))
                .unwrap_or(u64::MAX);
            let take = room.min(total - offset);
            if offset == 0 && take == total {
                part.encoder.write(&batch)?;
            } else {
                part.encoder.write(&batch.slice(offset, take))?;
            }
            part.rows += take;
            self.rows += take;
            offset += take;
            if total == 0 {
                break;
            }
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<CommitInfo> {
        if self.current.is_none() && self.finished.is_empty() && !self.committed {
            // An empty task still produces a file (with a header or schema),
            // so downstream readers see the stream existed.
            let part = self.next_part()?;
            self.current = Some(part);
        }
        self.close_current()?;
        let outputs = std::mem::take(&mut self.finished);
        for path in &outputs {
            blob::publish(path)?;
        }
        self.committed = true;
        // Each commit reports what it added; writing may go on.
        Ok(CommitInfo {
            rows: std::mem::take(&mut self.rows),
            bytes: std::mem::take(&mut self.bytes),
            outputs,
        })
    }

    fn abort(&mut self) {
        // An unfinished encoder leaves nothing when dropped; finished parts
        // are discarded unpublished.
        self.current = None;
        for path in self.finished.drain(..) {
            let _ = blob::discard(&path);
        }
    }
}

export_sink!(FileSink);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(output_path("out/x.parquet", "s", "0", 0), "out/x.parquet");
        assert_eq!(
            output_path("out/x.csv.gz", "s", "3", 1),
            "out/x-3-001.csv.gz"
        );
        assert_eq!(
            output_path("{stream}/{task}-{part}.csv", "orders", "2", 0),
            "orders/2-000.csv"
        );
        assert_eq!(split_ext("a.b/c"), ("a.b/c", ""));
        assert_eq!(split_ext("dir/.hidden"), ("dir/.hidden", ""));
    }

    #[test]
    fn writes_split_files_atomically() {
        use std::sync::Arc;

        use arrow_array::{Int64Array, RecordBatch};
        use arrow_schema::{DataType, Field, Schema};
        use sluice_sdk::testing::Harness;

        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..10))])
                .unwrap();
        let info = Harness::with_blob(dir.path())
            .write::<FileSink>(
                serde_json::json!({"path": "out.csv", "max_rows_per_file": 4}),
                "s",
                vec![batch],
            )
            .unwrap();
        assert_eq!(info.rows, 10);
        assert_eq!(info.outputs, ["out.csv", "out-0-001.csv", "out-0-002.csv"]);
        let first = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
        assert_eq!(first, "n\n0\n1\n2\n3\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".sluice-")), "{names:?}");
    }
}
