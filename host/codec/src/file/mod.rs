//! Native Arrow readers and writers for files in an object store.
//!
//! File-based plugins decode CSV, JSON Lines and Parquet (optionally gzip or
//! zstd compressed) at native speed, and the batches stay host-owned. The
//! options are JSON so a plugin can pass its user's config straight through.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression as ParquetCompression, GzipLevel, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{
    DEFAULT_DICTIONARY_PAGE_SIZE_LIMIT, DEFAULT_MAX_ROW_GROUP_ROW_COUNT, WriterProperties,
};
use parquet::file::reader::{ChunkReader, Length};
use parquet::schema::types::ColumnPath;
use serde::Deserialize;
use sluice_types::parse_type;

use crate::csv::CsvReader;
use crate::error::Error;
use crate::reject::{CsvFraming, RejectLog, SkippingCsv, SkippingJson};
use crate::store::{ObjectStore, ObjectWriter, Staged};

mod encode;

pub use encode::{EncodeOptions, Encoder, Finished};

pub use sluice_types::{Compression, FileFormat as Format};

/// What `decoder.open` accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeOptions {
    /// The file format.
    pub format: Format,
    /// Compression; `auto` by default.
    #[serde(default = "auto")]
    pub compression: Compression,
    /// Rows per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// CSV: whether the first (non-skipped) line names the columns.
    #[serde(default = "yes")]
    pub header: bool,
    /// CSV: field delimiter, one byte.
    #[serde(default = "comma")]
    pub delimiter: String,
    /// CSV: quote character, one byte.
    #[serde(default = "dquote")]
    pub quote: String,
    /// CSV: escape character, one byte, if any.
    #[serde(default)]
    pub escape: Option<String>,
    /// CSV: the text that means null (exactly); empty fields are null by default.
    #[serde(default)]
    pub null_string: Option<String>,
    /// CSV and JSON: lines to skip before the header or data.
    #[serde(default)]
    pub skip_lines: usize,
    /// CSV and JSON: rows sampled to infer types.
    #[serde(default = "default_infer_rows")]
    pub infer_rows: usize,
    /// CSV and JSON Lines: `fail` (default) stops at the first malformed row; `skip` counts
    /// it, records it as a [`Reject`] and goes on.
    #[serde(default)]
    pub on_invalid: OnInvalid,
    /// Read part of a file, so one large file is read by several tasks.
    /// CSV and JSON, uncompressed: the lines that start in
    /// `[range_start, range_end)` (byte offsets; quoted values must not hold
    /// newlines). Parquet: row groups `[range_start, range_end)`.
    #[serde(default)]
    pub range_start: Option<u64>,
    /// End of the byte range (exclusive); see `range_start`.
    #[serde(default)]
    pub range_end: Option<u64>,
    /// Column types that override inference, e.g. `{"id": "int64"}`; with
    /// `header: false` columns are named `column_1`, `column_2`, …
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

/// What to do with a row that does not parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnInvalid {
    /// Fail the task, naming the file and line.
    #[default]
    Fail,
    /// Skip the row, count it and keep it in the reject log.
    Skip,
}

fn auto() -> Compression {
    Compression::Auto
}
fn default_batch_size() -> usize {
    8192
}
fn default_infer_rows() -> usize {
    1000
}
fn yes() -> bool {
    true
}
fn comma() -> String {
    ",".into()
}
fn dquote() -> String {
    "\"".into()
}

fn one_byte(name: &str, s: &str) -> Result<u8, Error> {
    let s = if s == "\\t" { "\t" } else { s };
    match s.as_bytes() {
        [b] => Ok(*b),
        _ => Err(Error::config(format!(
            "{name} must be a single character, got {s:?}"
        ))),
    }
}

/// Counts bytes read from the underlying file (before decompression).
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn open_text(
    store: &dyn ObjectStore,
    path: &str,
    compression: Compression,
    skip_lines: usize,
    count: Arc<AtomicU64>,
) -> Result<Box<dyn BufRead + Send>, Error> {
    let file = CountingReader {
        inner: store.open(path, 0)?,
        count,
    };
    let io = |e| Error::io(path, e);
    let raw: Box<dyn Read + Send> = match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(file).map_err(io)?),
        Compression::None | Compression::Auto => Box::new(file),
    };
    let mut reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(1 << 20, raw));
    let mut line = Vec::new();
    for _ in 0..skip_lines {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(io)? == 0 {
            break;
        }
    }
    Ok(reader)
}

/// The top of a file, read again to infer its columns (not counted as read).
fn open_sample(
    store: &dyn ObjectStore,
    path: &str,
    compression: Compression,
    o: &DecodeOptions,
) -> Result<Box<dyn BufRead + Send>, Error> {
    open_text(store, path, compression, o.skip_lines, Arc::default())
}

/// Open the lines of `path` that start in `[start, end)`.
fn open_range(
    store: &dyn ObjectStore,
    path: &str,
    start: u64,
    end: u64,
    count: Arc<AtomicU64>,
) -> Result<Box<dyn BufRead + Send>, Error> {
    // Start one byte early: if that byte ends a line, a line starts at `start`.
    let file = store.open(path, start.saturating_sub(1))?;
    let mut reader = BufReader::with_capacity(1 << 20, CountingReader { inner: file, count });
    let mut pos = start.saturating_sub(1);
    let mut last = b'\n';
    if start > 0 {
        let mut partial = Vec::new();
        pos += reader
            .read_until(b'\n', &mut partial)
            .map_err(|e| Error::io(path, e))? as u64;
        last = partial.last().copied().unwrap_or(b'\n');
    }
    Ok(Box::new(BufReader::with_capacity(
        1 << 20,
        LineRange {
            inner: reader,
            pos,
            end,
            last,
            done: false,
        },
    )))
}

/// Passes through the lines that start before `end`, then stops.
struct LineRange<R> {
    inner: R,
    pos: u64,
    end: u64,
    last: u8,
    done: bool,
}

impl<R: BufRead> Read for LineRange<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done || out.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.end && self.last == b'\n' {
            self.done = true;
            return Ok(0);
        }
        let buf = self.inner.fill_buf()?;
        if buf.is_empty() {
            self.done = true;
            return Ok(0);
        }
        let n = if self.pos < self.end {
            buf.len().min((self.end - self.pos) as usize)
        } else {
            // Past the end: finish the line that started inside the range.
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => buf.len(),
            }
        }
        .min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.last = buf[n - 1];
        self.inner.consume(n);
        self.pos += n as u64;
        Ok(n)
    }
}

fn apply_overrides(
    schema: Schema,
    columns: &BTreeMap<String, String>,
    path: &str,
) -> Result<Schema, Error> {
    for name in columns.keys() {
        if schema.field_with_name(name).is_err() {
            let known: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(Error::config(format!(
                "{path}: columns.{name}: no such column (the file has: {})",
                known.join(", ")
            )));
        }
    }
    let fields: Result<Vec<Field>, Error> = schema
        .fields()
        .iter()
        .map(|f| match columns.get(f.name()) {
            Some(ty) => parse_type(ty)
                .map(|dt| Field::new(f.name(), dt, true))
                .map_err(|e| Error::config(format!("columns.{}: {e}", f.name()))),
            None => Ok(f.as_ref().clone().with_nullable(true)),
        })
        .collect();
    Ok(Schema::new(fields?))
}

/// Keys of the first `max_lines` JSON objects, in order of first appearance.
fn json_key_order(reader: impl BufRead, max_lines: usize) -> Vec<String> {
    struct Keys<'a>(&'a mut Vec<String>);
    impl<'de> serde::de::Visitor<'de> for Keys<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                if !self.0.contains(&key) {
                    self.0.push(key);
                }
            }
            Ok(())
        }
    }
    let mut keys = Vec::new();
    for line in reader.lines().take(max_lines) {
        let Ok(line) = line else { break };
        let mut de = serde_json::Deserializer::from_str(&line);
        let _ = serde::Deserializer::deserialize_map(&mut de, Keys(&mut keys));
    }
    keys
}

/// `schema` with its fields in `order` (fields not named there keep theirs, last).
fn reorder_fields(schema: Schema, order: &[String]) -> Schema {
    let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
    fields.sort_by_key(|f| {
        order
            .iter()
            .position(|k| k == f.name())
            .unwrap_or(usize::MAX)
    });
    Schema::new(fields)
}

type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

/// An open object being decoded into batches.
pub struct Decoder {
    path: String,
    schema: SchemaRef,
    batches: BatchIter,
    rejected: Arc<AtomicU64>,
}

impl Decoder {
    /// Open `path` under `root` with `options` (see [`DecodeOptions`]).
    pub fn open(
        store: &Arc<dyn ObjectStore>,
        path: &str,
        options: &DecodeOptions,
        bytes_read: Arc<AtomicU64>,
        rejects: RejectLog,
    ) -> Result<Decoder, Error> {
        let rejected = Arc::new(AtomicU64::new(0));
        if options.on_invalid == OnInvalid::Skip && options.format == Format::Parquet {
            return Err(Error::config(format!(
                "{path}: on_invalid: skip is for CSV and JSON Lines; Parquet files are typed and fail as a whole"
            )));
        }
        let (schema, batches): (SchemaRef, BatchIter) = match options.format {
            Format::Csv => Self::open_csv(
                store.as_ref(),
                path,
                options,
                bytes_read.clone(),
                (rejects, rejected.clone()),
            )?,
            Format::Json => Self::open_json(
                store.as_ref(),
                path,
                options,
                bytes_read.clone(),
                (rejects, rejected.clone()),
            )?,
            Format::Parquet => match store.open_local(path)? {
                Some(file) => parquet_batches(file, path, options, &bytes_read)?,
                None => parquet_batches(
                    RemoteObject::open(store.clone(), path)?,
                    path,
                    options,
                    &bytes_read,
                )?,
            },
        };
        Ok(Decoder {
            path: path.to_string(),
            schema,
            batches,
            rejected,
        })
    }

    fn open_csv(
        store: &dyn ObjectStore,
        path: &str,
        o: &DecodeOptions,
        count: Arc<AtomicU64>,
        (log, rejected): (RejectLog, Arc<AtomicU64>),
    ) -> Result<(SchemaRef, BatchIter), Error> {
        let compression = o.compression.resolve(path);
        let delimiter = one_byte("delimiter", &o.delimiter)?;
        let quote = one_byte("quote", &o.quote)?;
        let escape = o
            .escape
            .as_deref()
            .map(|e| one_byte("escape", e))
            .transpose()?;
        let mut format = arrow::csv::reader::Format::default()
            .with_header(o.header)
            .with_delimiter(delimiter)
            .with_quote(quote);
        if let Some(escape) = escape {
            format = format.with_escape(escape);
        }
        if let Some(null) = &o.null_string {
            let re = regex::Regex::new(&format!("^{}$", regex::escape(null)))
                .map_err(|e| Error::config(format!("null_string: {e}")))?;
            format = format.with_null_regex(re);
        }
        let framing = || CsvFraming {
            delimiter,
            quote,
            escape,
            header: o.header,
            first_line: o.skip_lines as u64 + 1,
        };
        let mut sample = open_sample(store, path, compression, o)?;
        if o.on_invalid == OnInvalid::Skip {
            // Infer from the rows that have the header's shape.
            let clean = SkippingCsv::new(
                sample,
                framing(),
                Arc::new(Schema::empty()),
                format.clone(),
                1,
                path.to_string(),
                RejectLog::default(),
            )
            .clean_sample(o.infer_rows)
            .map_err(|e| Error::io(path, e))?;
            sample = Box::new(io::Cursor::new(clean));
        }
        let (inferred, _) = format
            .infer_schema(sample, Some(o.infer_rows))
            .map_err(|e| Error::data(format!("{path}: cannot read CSV header: {e}")))?;
        let schema = Arc::new(apply_overrides(inferred, &o.columns, path)?);
        if let Some(f) = schema
            .fields()
            .iter()
            .find(|f| !crate::csv::supported(f.data_type()))
        {
            return Err(Error::config(format!(
                "{path}: columns.{}: CSV cannot hold {} values",
                f.name(),
                sluice_types::type_name(f.data_type())
            )));
        }
        if matches!(delimiter, b'\n' | b'\r') {
            return Err(Error::config("delimiter cannot be a line break"));
        }
        let (input, from_start) = Self::input(store, path, compression, o, count)?;
        let format = format.with_header(o.header && from_start);
        if o.on_invalid == OnInvalid::Skip {
            let mut framing = framing();
            framing.header &= from_start;
            let mut reader = SkippingCsv::new(
                input,
                framing,
                schema.clone(),
                format,
                o.batch_size,
                path.to_string(),
                log,
            );
            reader.salvage.rejected = rejected;
            return Ok((schema, Box::new(reader)));
        }
        let first_line = if from_start {
            o.skip_lines as u64 + 1
        } else {
            1
        };
        let options = crate::csv::CsvOptions {
            delimiter,
            quote,
            escape,
            null_string: o.null_string.clone(),
            header: o.header && from_start,
            batch_size: o.batch_size,
            first_line,
        };
        Ok((
            schema.clone(),
            Box::new(CsvReader::new(input, schema, options)),
        ))
    }

    fn open_json(
        store: &dyn ObjectStore,
        path: &str,
        o: &DecodeOptions,
        count: Arc<AtomicU64>,
        (log, rejected): (RejectLog, Arc<AtomicU64>),
    ) -> Result<(SchemaRef, BatchIter), Error> {
        let compression = o.compression.resolve(path);
        // Read the sample once; inference and the field order both use it.
        let mut input = open_sample(store, path, compression, o)?;
        let mut sample = Vec::new();
        let mut kept = 0;
        let mut line = String::new();
        while kept < o.infer_rows {
            line.clear();
            if input.read_line(&mut line).map_err(|e| Error::io(path, e))? == 0 {
                break;
            }
            if line.trim().is_empty() {
                continue;
            }
            // With `on_invalid: skip`, infer from the lines that are objects.
            if o.on_invalid == OnInvalid::Skip
                && serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line)
                    .is_err()
            {
                continue;
            }
            sample.extend_from_slice(line.trim_end().as_bytes());
            sample.push(b'\n');
            kept += 1;
        }
        let (inferred, _) = arrow::json::reader::infer_json_schema(&sample[..], None)
            .map_err(|e| Error::data(format!("{path}: cannot infer JSON schema: {e}")))?;
        // Inference sorts the fields; users expect the order of the file.
        let order = json_key_order(&sample[..], o.infer_rows);
        let inferred = reorder_fields(inferred, &order);
        let schema = Arc::new(apply_overrides(inferred, &o.columns, path)?);
        let (input, from_start) = Self::input(store, path, compression, o, count)?;
        if o.on_invalid == OnInvalid::Skip {
            let first_line = if from_start {
                o.skip_lines as u64 + 1
            } else {
                1
            };
            let mut reader = SkippingJson::new(
                input,
                schema.clone(),
                o.batch_size,
                path.to_string(),
                log,
                first_line,
            );
            reader.salvage.rejected = rejected;
            return Ok((schema, Box::new(reader)));
        }
        let reader = arrow::json::ReaderBuilder::new(schema.clone())
            .with_batch_size(o.batch_size)
            .build(input)
            .map_err(|e| Error::data(format!("{path}: {e}")))?;
        Ok((schema, Box::new(reader)))
    }

    /// The text to decode: the whole file, or a byte range of lines.
    /// Also says whether it starts at the top of the file (header, skip_lines).
    fn input(
        store: &dyn ObjectStore,
        path: &str,
        compression: Compression,
        o: &DecodeOptions,
        count: Arc<AtomicU64>,
    ) -> Result<(Box<dyn BufRead + Send>, bool), Error> {
        match (o.range_start, o.range_end) {
            (None, None) => Ok((
                open_text(store, path, compression, o.skip_lines, count)?,
                true,
            )),
            (Some(start), Some(end)) if compression == Compression::None && start <= end => {
                if start == 0 {
                    let mut r = open_range(store, path, 0, end, count)?;
                    let mut line = Vec::new();
                    for _ in 0..o.skip_lines {
                        line.clear();
                        if r.read_until(b'\n', &mut line)
                            .map_err(|e| Error::io(path, e))?
                            == 0
                        {
                            break;
                        }
                    }
                    Ok((r, true))
                } else {
                    Ok((open_range(store, path, start, end, count)?, false))
                }
            }
            _ => Err(Error::config(format!(
                "{path}: byte ranges need both range_start <= range_end, on an uncompressed file"
            ))),
        }
    }

    /// The schema of every batch.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows skipped as invalid so far (`on_invalid: skip`).
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The next batch, or `None` at the end.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, Error> {
        match self.batches.next() {
            None => Ok(None),
            Some(Ok(batch)) => Ok(Some(batch)),
            Some(Err(e)) => Err(Error::data(format!("{}: {e}", self.path))),
        }
    }
}

/// What [`inspect`] learns about a file without reading its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStats {
    /// Parquet: rows in the file.
    pub rows: Option<u64>,
    /// Parquet: row groups in the file (the unit a file can be split by).
    pub row_groups: Option<u64>,
}

/// Read a file's metadata (the Parquet footer); other formats have none.
///
/// # Errors
/// When the file is missing or not the format it claims.
pub fn inspect(
    store: &Arc<dyn ObjectStore>,
    path: &str,
    format: Format,
) -> Result<FileStats, Error> {
    fn footer<R: ChunkReader + 'static>(file: R, path: &str) -> Result<FileStats, Error> {
        let reader = parquet::file::reader::SerializedFileReader::new(file)
            .map_err(|e| Error::data(format!("{path}: not a Parquet file: {e}")))?;
        let meta = parquet::file::reader::FileReader::metadata(&reader);
        Ok(FileStats {
            rows: Some(meta.file_metadata().num_rows() as u64),
            row_groups: Some(meta.num_row_groups() as u64),
        })
    }
    if format != Format::Parquet {
        return Ok(FileStats::default());
    }
    match store.open_local(path)? {
        Some(file) => footer(file, path),
        None => footer(RemoteObject::open(store.clone(), path)?, path),
    }
}

/// Batches of a Parquet file (or of a range of its row groups).
fn parquet_batches<R: ChunkReader + 'static>(
    file: R,
    path: &str,
    options: &DecodeOptions,
    bytes_read: &AtomicU64,
) -> Result<(SchemaRef, BatchIter), Error> {
    bytes_read.fetch_add(file.len(), Ordering::Relaxed);
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::data(format!("{path}: not a Parquet file: {e}")))?;
    if let (Some(start), Some(end)) = (options.range_start, options.range_end) {
        // For Parquet the range counts row groups, not bytes.
        let groups = builder.metadata().num_row_groups() as u64;
        if start > end || end > groups {
            return Err(Error::config(format!(
                "{path}: row groups {start}..{end} out of 0..{groups}"
            )));
        }
        builder = builder.with_row_groups((start as usize..end as usize).collect());
    }
    let reader = builder
        .with_batch_size(options.batch_size)
        .build()
        .map_err(|e| Error::data(format!("{path}: {e}")))?;
    let schema = arrow::record_batch::RecordBatchReader::schema(&reader);
    Ok((schema, Box::new(reader)))
}

/// An object in a remote store, read by ranges: what Parquet needs to read
/// a footer and then only the column chunks it wants.
struct RemoteObject {
    store: Arc<dyn ObjectStore>,
    path: String,
    size: u64,
}

impl RemoteObject {
    fn open(store: Arc<dyn ObjectStore>, path: &str) -> Result<Self, Error> {
        let size = store
            .stat(path)?
            .ok_or_else(|| Error::config(format!("{path}: no such object")))?
            .size;
        Ok(RemoteObject {
            store,
            path: path.to_string(),
            size,
        })
    }
}

impl Length for RemoteObject {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for RemoteObject {
    type T = Box<dyn Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        self.store
            .open(&self.path, start)
            .map_err(|e| ParquetError::External(Box::new(e)))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        let mut out = Vec::with_capacity(length);
        while out.len() < length {
            let at = start + out.len() as u64;
            let chunk = self
                .store
                .read(&self.path, at, (length - out.len()) as u64)
                .map_err(|e| ParquetError::External(Box::new(e)))?;
            if chunk.is_empty() {
                return Err(ParquetError::EOF(format!(
                    "{}: ends before byte {}",
                    self.path,
                    start + length as u64
                )));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn byte_ranges_split_on_line_starts() {
        let dir = tempfile::tempdir().unwrap();
        let text = "h\naaa\nbb\nc\ndddd\n";
        std::fs::write(dir.path().join("f.csv"), text).unwrap();
        let store = crate::LocalStore::open(dir.path()).unwrap();
        let read = |start, end| {
            let mut out = String::new();
            open_range(&store, "f.csv", start, end, Arc::default())
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            out
        };
        // Every split point gives each line to exactly one range.
        for cut in 0..=text.len() as u64 {
            for cut2 in cut..=text.len() as u64 {
                let joined = read(0, cut) + &read(cut, cut2) + &read(cut2, text.len() as u64);
                assert_eq!(joined, text, "cuts {cut} {cut2}");
            }
        }
        assert_eq!(read(3, 7), "bb\n");
        assert_eq!(read(2, 3), "aaa\n");
    }
}
