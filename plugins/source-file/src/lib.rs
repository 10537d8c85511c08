//! `file`: read CSV, JSON Lines and Parquet files from a granted directory
//! or S3 prefix.
//!
//! Globs pick the files; each file is a partition, read in parallel with the
//! others. Decoding happens in the host's native codec and batches are passed
//! on without entering this plugin's memory. With `incremental: true`, files
//! already read (same size and modification time) are skipped on the next
//! run; with `incremental: last_path` (Embulk's), only paths after the last
//! one read are listed at all, which keeps a run cheap on a bucket that
//! holds years of files.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_sdk::codec::Decoder;
use sluice_sdk::{
    Error, Event, Info, Partition, Reader, Result, Source, StreamInfo, SyncMode, blob,
    export_source,
};

use sluice_sdk::types::FileFormat as Format;

/// The file source's config.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// Changing these changes how, not what, it reads or writes: saved state
// is kept (the host leaves them out of the state key).
#[schemars(extend("x-sluice-state-ignores" = ["batch_size", "infer_rows"]))]
pub struct Config {
    /// Globs relative to the granted directory or S3 prefix, e.g. `["orders/*.csv.gz"]`.
    #[schemars(length(min = 1))]
    pub paths: Vec<String>,
    /// The format; by default from each file's extension.
    #[serde(default)]
    pub format: Option<Format>,
    /// `auto` (from the extension), `none`, `gzip` or `zstd`.
    #[serde(default)]
    pub compression: Option<String>,
    /// Stream name.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Skip what an earlier run read: `true` (or `files`) skips each file
    /// read before unless its size or modification time changed; `last_path`
    /// lists only paths after the last one read (new files must sort after
    /// old ones, e.g. dated names).
    #[serde(default)]
    pub incremental: Incremental,
    /// Rows per batch.
    #[serde(default)]
    pub batch_size: Option<u64>,
    /// Read files larger than this many bytes as several partitions, in
    /// parallel (each writes its own output file): uncompressed CSV and JSON
    /// by byte ranges of lines (quoted values must hold no newlines),
    /// Parquet by ranges of row groups.
    #[serde(default)]
    #[schemars(range(min = 1024))]
    pub split_bytes: Option<u64>,
    /// CSV: whether the first line names the columns (default true).
    #[serde(default)]
    pub header: Option<bool>,
    /// CSV: delimiter (default `,`; `\t` for tabs).
    #[serde(default)]
    pub delimiter: Option<String>,
    /// CSV: quote character (default `"`).
    #[serde(default)]
    pub quote: Option<String>,
    /// CSV: escape character (default none: quotes are doubled).
    #[serde(default)]
    pub escape: Option<String>,
    /// CSV: the text that means null (empty fields are null anyway).
    #[serde(default)]
    pub null_string: Option<String>,
    /// Lines to skip at the top of each file, before the header.
    #[serde(default)]
    pub skip_lines: Option<u64>,
    /// Rows sampled to infer column types (default 1000).
    #[serde(default)]
    pub infer_rows: Option<u64>,
    /// CSV and JSON Lines: what to do with a row that does not parse: `fail` (default)
    /// stops with the file and line; `skip` counts it and keeps it in a
    /// reject file next to the output.
    #[serde(default)]
    pub on_invalid: Option<OnInvalid>,
    /// Column types overriding inference: `{id: int64, amount: "decimal(12,2)"}`.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

/// How a run skips what earlier runs read.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum Incremental {
    /// `true` or `false`.
    Flag(bool),
    /// `files` or `last_path`.
    Mode(IncrementalMode),
    /// Read everything every time.
    #[default]
    #[serde(skip)]
    Off,
}

/// A named incremental mode.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IncrementalMode {
    /// By each file's size and modification time.
    Files,
    /// By path: only paths after the last one read.
    LastPath,
}

impl Incremental {
    fn mode(self) -> Option<IncrementalMode> {
        match self {
            Incremental::Flag(true) => Some(IncrementalMode::Files),
            Incremental::Mode(m) => Some(m),
            Incremental::Flag(false) | Incremental::Off => None,
        }
    }
}

/// What to do with a row that does not parse.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnInvalid {
    /// Fail the task.
    Fail,
    /// Skip the row, count it, keep it in the reject file.
    Skip,
}

fn default_stream() -> String {
    "files".into()
}

/// The format of `path`, from config or its extension.
fn format_of(config: &Config, path: &str) -> Result<Format> {
    if let Some(f) = config.format {
        return Ok(f);
    }
    Format::from_path(path).ok_or_else(|| {
        Error::config(format!(
            "source.config.format: cannot tell the format of {path} from its extension; set format: csv, json or parquet"
        ))
    })
}

/// Decoder options for the host codec.
fn decoder_options(config: &Config, path: &str) -> Result<Value> {
    let format = format_of(config, path)?;
    let mut o = json!({
        "format": format.as_str(),
        "compression": config.compression.clone().unwrap_or_else(|| "auto".into()),
        "columns": config.columns,
    });
    let m = o.as_object_mut().expect("object");
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    set("batch_size", config.batch_size.map(Value::from));
    set("skip_lines", config.skip_lines.map(Value::from));
    set("infer_rows", config.infer_rows.map(Value::from));
    set(
        "on_invalid",
        config.on_invalid.map(|o| {
            Value::from(match o {
                OnInvalid::Fail => "fail",
                OnInvalid::Skip => "skip",
            })
        }),
    );
    if format == Format::Csv {
        set("header", config.header.map(Value::from));
        set("delimiter", config.delimiter.clone().map(Value::from));
        set("quote", config.quote.clone().map(Value::from));
        set("escape", config.escape.clone().map(Value::from));
        set("null_string", config.null_string.clone().map(Value::from));
    }
    Ok(o)
}

/// Every file matching the config's globs, once, sorted.
fn matching_files(config: &Config) -> Result<Vec<blob::ObjectInfo>> {
    matching_files_after(config, None)
}

/// The files matching the config's globs whose path sorts after `after`.
fn matching_files_after(config: &Config, after: Option<&str>) -> Result<Vec<blob::ObjectInfo>> {
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    for pattern in &config.paths {
        let found = blob::list_after(pattern, after)?;
        if found.is_empty() && after.is_none() {
            // A path named outright that is not listed may be a symlink
            // the host refuses to follow: say so instead of reading nothing.
            if !pattern.contains(['*', '?', '[', '{']) {
                blob::stat(pattern)?;
            }
            sluice_sdk::log::warn(&format!("no file matches {pattern:?}"));
        }
        for f in found {
            if seen.insert(f.path.clone()) {
                files.push(f);
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// What a finished file's state records: enough to notice it changed.
fn file_state(f: &blob::ObjectInfo) -> String {
    format!("{}:{}", f.size, f.modified_ms)
}

/// The plugin.
pub struct FileSource;

impl Source for FileSource {
    type Config = Config;
    type Reader = FileReader;

    fn info() -> Info {
        Info {
            name: "file",
            version: env!("CARGO_PKG_VERSION"),
            description: "CSV, JSON Lines and Parquet files (gzip, zstd) from a directory",
            capabilities: &["blob", "codec"],
        }
    }

    fn check(config: &Config) -> Result<()> {
        let files = matching_files(config)?;
        if files.is_empty() {
            return Err(Error::config(format!(
                "source.config.paths: no file matches {:?}",
                config.paths
            )));
        }
        for f in &files {
            format_of(config, &f.path)?;
        }
        Ok(())
    }

    fn discover(config: &Config) -> Result<Vec<StreamInfo>> {
        let files = matching_files(config)?;
        let schema = match files.first() {
            Some(f) => Some(Decoder::open(&f.path, &decoder_options(config, &f.path)?)?.schema()?),
            None => None,
        };
        Ok(vec![StreamInfo {
            name: config.stream.clone(),
            schema,
            primary_key: Vec::new(),
            cursor_fields: Vec::new(),
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
        let mode = config.incremental.mode();
        let done: BTreeMap<String, String> = match (mode, state) {
            (Some(_), Some(s)) => serde_json::from_str(s)
                .map_err(|e| Error::internal(format!("saved state is not a JSON object: {e}")))?,
            _ => BTreeMap::new(),
        };
        if mode == Some(IncrementalMode::LastPath) {
            return last_path_partitions(config, stream, &done);
        }
        let mut parts = Vec::new();
        for f in matching_files(config)? {
            // Without `incremental`, every run reads every file: no state is
            // saved, so the sink hears each run start afresh (a `replace`
            // staging table from a killed run is dropped, not appended to).
            let state = match mode {
                Some(_) => file_state(&f),
                None => String::new(),
            };
            for (id, spec) in file_partitions(config, &f, &state)? {
                if done.get(&id) == Some(&file_state(&f)) {
                    continue;
                }
                parts.push(Partition {
                    stream: stream.into(),
                    id,
                    spec: spec.to_string(),
                });
            }
        }
        Ok(parts)
    }

    fn open(config: Config, partition: Partition, _state: Option<String>) -> Result<FileReader> {
        let spec: Value = serde_json::from_str(&partition.spec)
            .map_err(|e| Error::internal(format!("bad partition spec: {e}")))?;
        if partition.id == WATERMARK {
            // Nothing to read: only the watermark to save.
            return Ok(FileReader {
                decoder: None,
                done_state: spec["state"].as_str().unwrap_or_default().to_string(),
            });
        }
        let path = spec["path"].as_str().unwrap_or(&partition.id).to_string();
        let mut options = decoder_options(&config, &path)?;
        if let (Some(start), Some(end)) = (spec["start"].as_u64(), spec["end"].as_u64()) {
            options["range_start"] = start.into();
            options["range_end"] = end.into();
        }
        let decoder = Decoder::open(&path, &options)?;
        Ok(FileReader {
            decoder: Some(decoder),
            done_state: spec["state"].as_str().unwrap_or_default().to_string(),
        })
    }
}

/// The partition that only saves the watermark, on a run with nothing new
/// to read (no file path starts with `/`).
const WATERMARK: &str = "/last_path";

/// `incremental: last_path`: list only after the watermark, the last path
/// up to which every file was read. Each partition's saved state is
/// `<size>:<modified>@<watermark>`, so the next run lists after the newest
/// watermark, and a file left unfinished by a failed run (at or after it)
/// is listed and read again.
fn last_path_partitions(
    config: &Config,
    stream: &str,
    done: &BTreeMap<String, String>,
) -> Result<Vec<Partition>> {
    let after = done
        .values()
        .filter_map(|s| s.split_once('@').map(|(_, w)| w))
        .filter(|w| !w.is_empty())
        .max()
        .map(str::to_string);
    let files = matching_files_after(config, after.as_deref())?;
    // Advance the watermark over the leading files that are fully read.
    let mut watermark = after.unwrap_or_default();
    let mut pending = Vec::new();
    for f in &files {
        let parts = file_partitions(config, f, "")?;
        let unread: Vec<_> = parts
            .into_iter()
            .filter(|(id, _)| {
                done.get(id)
                    .and_then(|s| s.split_once('@'))
                    .map(|(st, _)| st)
                    != Some(file_state(f).as_str())
            })
            .collect();
        if unread.is_empty() && pending.is_empty() {
            watermark = f.path.clone();
        }
        pending.extend(unread.into_iter().map(|p| (f, p)));
    }
    if pending.is_empty() {
        // Nothing new: save how far the listing got, so the next run starts
        // there instead of listing the files read before again.
        return Ok(vec![Partition {
            stream: stream.into(),
            id: WATERMARK.into(),
            spec: json!({"state": format!("@{watermark}")}).to_string(),
        }]);
    }
    Ok(pending
        .into_iter()
        .map(|(f, (id, mut spec))| {
            spec["state"] = format!("{}@{watermark}", file_state(f)).into();
            Partition {
                stream: stream.into(),
                id,
                spec: spec.to_string(),
            }
        })
        .collect())
}

/// A file's partitions: `(id, spec)`; byte ranges when `split_bytes` applies.
/// `state` is what each partition saves when it is read.
fn file_partitions(
    config: &Config,
    f: &blob::ObjectInfo,
    state: &str,
) -> Result<Vec<(String, Value)>> {
    let format = format_of(config, &f.path)?;
    let compressed = sluice_sdk::types::Compression::from_path(&f.path)
        != sluice_sdk::types::Compression::None
        || matches!(config.compression.as_deref(), Some("gzip" | "zstd"));
    match config.split_bytes {
        Some(split) if format == Format::Parquet && f.size > split => {
            // Parquet splits by row groups: about `split` bytes of them each.
            let groups = sluice_sdk::codec::inspect(&f.path, format)?
                .row_groups
                .unwrap_or(1);
            let parts = f.size.div_ceil(split).clamp(1, groups.max(1));
            let per = groups.div_ceil(parts).max(1);
            let mut out = Vec::new();
            let mut start = 0;
            while start < groups {
                let end = (start + per).min(groups);
                out.push((
                    format!("{}#{start}-{end}", f.path),
                    json!({"path": f.path, "start": start, "end": end, "state": state}),
                ));
                start = end;
            }
            Ok(out)
        }
        Some(split) if format != Format::Parquet && !compressed && f.size > split => {
            let mut out = Vec::new();
            let mut start = 0;
            while start < f.size {
                let end = (start + split).min(f.size);
                out.push((
                    format!("{}@{start}-{end}", f.path),
                    json!({"path": f.path, "start": start, "end": end, "state": state}),
                ));
                start = end;
            }
            Ok(out)
        }
        _ => Ok(vec![(
            f.path.clone(),
            json!({"path": f.path, "state": state}),
        )]),
    }
}

/// Reads one file, then checkpoints it as done.
pub struct FileReader {
    decoder: Option<Decoder>,
    done_state: String,
}

impl Reader for FileReader {
    fn next(&mut self) -> Result<Option<Event>> {
        let Some(decoder) = &self.decoder else {
            if self.done_state.is_empty() {
                return Ok(None);
            }
            return Ok(Some(Event::Checkpoint(std::mem::take(
                &mut self.done_state,
            ))));
        };
        match decoder.next_batch()? {
            Some(batch) => Ok(Some(Event::Batch(batch))),
            None => {
                self.decoder = None;
                // Without `incremental` there is nothing to remember.
                if self.done_state.is_empty() {
                    return Ok(None);
                }
                Ok(Some(Event::Checkpoint(std::mem::take(
                    &mut self.done_state,
                ))))
            }
        }
    }
}

export_source!(FileSource);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: Value) -> Config {
        let mut base = json!({"paths": ["*.csv"]});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn format_from_extension() {
        let c = config(json!({}));
        assert_eq!(format_of(&c, "a.csv").unwrap(), Format::Csv);
        assert_eq!(format_of(&c, "a.CSV.gz").unwrap(), Format::Csv);
        assert_eq!(format_of(&c, "a.jsonl.zst").unwrap(), Format::Json);
        assert_eq!(format_of(&c, "a.parquet").unwrap(), Format::Parquet);
        let err = format_of(&c, "a.bin").unwrap_err();
        assert!(err.message.contains("source.config.format"), "{err}");
    }

    #[test]
    fn csv_options_reach_the_codec() {
        let c = config(json!({"delimiter": "\t", "null_string": "NA", "columns": {"id": "int64"}}));
        let o = decoder_options(&c, "x.tsv").unwrap();
        assert_eq!(o["format"], "csv");
        assert_eq!(o["delimiter"], "\t");
        assert_eq!(o["null_string"], "NA");
        assert_eq!(o["columns"]["id"], "int64");
        let o = decoder_options(&c, "x.parquet").unwrap();
        assert!(o.get("delimiter").is_none());
    }

    #[test]
    fn reads_files_through_the_real_codec() {
        use sluice_sdk::testing::Harness;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "id,name\n1,x\n2,y\n").unwrap();
        std::fs::write(dir.path().join("b.csv"), "id,name\n3,z\n").unwrap();
        let harness = Harness::with_blob(dir.path());
        let out = harness
            .read::<FileSource>(json!({"paths": ["*.csv"], "incremental": true}))
            .unwrap();
        assert_eq!(out.rows(), 3);
        assert_eq!(out.checkpoints.len(), 2);
        // Saved states make the next read skip both files.
        let state = out.checkpoints.into_iter().collect();
        let again = harness
            .read_with_state::<FileSource>(
                json!({"paths": ["*.csv"], "incremental": true}),
                Some(&state),
            )
            .unwrap();
        assert_eq!(again.rows(), 0);
        // Config is checked against the schema first, as the host does.
        let err = harness
            .read::<FileSource>(json!({"path": ["*.csv"]}))
            .unwrap_err();
        assert!(err.message.contains("config"), "{err}");
    }
}
