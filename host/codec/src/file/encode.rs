//! Writing batches to an object: CSV and JSON Lines through a stream
//! compressor, Parquet with its column codecs.

use super::*;

/// What `encoder.create` accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodeOptions {
    /// The file format.
    pub format: Format,
    /// Compression: for CSV/JSON the whole stream (`none`, `gzip`, `zstd`);
    /// for Parquet the column codec (`none`, `snappy`, `gzip`, `zstd`).
    #[serde(default)]
    pub compression: Option<String>,
    /// Compression level, where the codec has one.
    #[serde(default)]
    pub level: Option<i32>,
    /// CSV: write a header line.
    #[serde(default = "yes")]
    pub header: bool,
    /// CSV: field delimiter.
    #[serde(default = "comma")]
    pub delimiter: String,
    /// Parquet: rows per row group.
    #[serde(default)]
    pub row_group_rows: Option<usize>,
    /// Keep the finished object invisible until it is published (see
    /// [`Finished::staged`]): a sink's files appear when its task commits.
    #[serde(default)]
    pub staged: bool,
}

/// A finished object.
pub struct Finished {
    /// Its size in bytes.
    pub bytes: u64,
    /// With `staged`, the object to publish; dropping it discards the object.
    pub staged: Option<Box<dyn Staged>>,
}

/// Counts bytes written to the file (after compression).
struct CountingWriter<W> {
    inner: W,
    count: Arc<AtomicU64>,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type FileOut = CountingWriter<BufWriter<Box<dyn ObjectWriter>>>;

/// A stream compressor whose end is written explicitly, so a failure to
/// finish is an error and not a silently truncated file.
enum Compressed {
    Plain(FileOut),
    Gzip(flate2::write::GzEncoder<FileOut>),
    Zstd(zstd::stream::write::Encoder<'static, FileOut>),
}

impl Write for Compressed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressed::Plain(w) => w.write(buf),
            Compressed::Gzip(w) => w.write(buf),
            Compressed::Zstd(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressed::Plain(w) => w.flush(),
            Compressed::Gzip(w) => w.flush(),
            Compressed::Zstd(w) => w.flush(),
        }
    }
}

impl Compressed {
    fn finish(self) -> io::Result<FileOut> {
        let mut out = match self {
            Compressed::Plain(w) => w,
            Compressed::Gzip(w) => w.finish()?,
            Compressed::Zstd(w) => w.finish()?,
        };
        out.flush()?;
        Ok(out)
    }
}

// One per open file: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Writer {
    Csv(arrow::csv::Writer<Compressed>),
    Json(arrow::json::LineDelimitedWriter<Compressed>),
    Parquet(ArrowWriter<FileOut>),
    /// A Parquet file whose writer waits for the first batch, which decides
    /// the columns written without a dictionary ([`crate::dictionary`]).
    ParquetPending {
        file: FileOut,
        props: parquet::file::properties::WriterPropertiesBuilder,
        group_rows: usize,
    },
}

/// An object being written from batches.
pub struct Encoder {
    path: String,
    schema: SchemaRef,
    writer: Option<Writer>,
    bytes_written: Arc<AtomicU64>,
    staging_token: Option<String>,
}

impl Encoder {
    /// Create `path` under `root` for batches of `schema`.
    pub fn create(
        store: &dyn ObjectStore,
        path: &str,
        schema: SchemaRef,
        o: &EncodeOptions,
    ) -> Result<Encoder, Error> {
        Self::create_recorded(store, path, schema, o, &mut |_| Ok(()))
    }

    /// [`Encoder::create`], handing the object's staging token to `record`
    /// before anything exists that could be left behind
    /// ([`ObjectStore::create_recorded`]).
    pub fn create_recorded(
        store: &dyn ObjectStore,
        path: &str,
        schema: SchemaRef,
        o: &EncodeOptions,
        record: &mut dyn FnMut(&str) -> Result<(), Error>,
    ) -> Result<Encoder, Error> {
        let bytes_written = Arc::new(AtomicU64::new(0));
        let object = store.create_recorded(path, o.staged, record)?;
        let staging_token = object.staging_token();
        let file = CountingWriter {
            inner: BufWriter::with_capacity(1 << 20, object),
            count: bytes_written.clone(),
        };
        let compression = o
            .compression
            .as_deref()
            .unwrap_or("none")
            .to_ascii_lowercase();
        let writer = match o.format {
            Format::Csv | Format::Json => {
                let stream = match compression.as_str() {
                    "none" => Compressed::Plain(file),
                    "gzip" | "gz" => Compressed::Gzip(flate2::write::GzEncoder::new(
                        file,
                        flate2::Compression::new(o.level.unwrap_or(6).clamp(0, 9) as u32),
                    )),
                    "zstd" | "zst" => Compressed::Zstd(
                        zstd::stream::write::Encoder::new(file, o.level.unwrap_or(3))
                            .map_err(|e| Error::io(path, e))?,
                    ),
                    other => {
                        return Err(Error::config(format!(
                            "compression `{other}` is not available for {:?}: use none, gzip or zstd",
                            o.format
                        )));
                    }
                };
                if o.format == Format::Csv {
                    Writer::Csv(
                        arrow::csv::WriterBuilder::new()
                            .with_header(o.header)
                            .with_delimiter(one_byte("delimiter", &o.delimiter)?)
                            .build(stream),
                    )
                } else {
                    Writer::Json(arrow::json::LineDelimitedWriter::new(stream))
                }
            }
            Format::Parquet => {
                let codec = match compression.as_str() {
                    "none" | "uncompressed" => ParquetCompression::UNCOMPRESSED,
                    "snappy" => ParquetCompression::SNAPPY,
                    "gzip" => ParquetCompression::GZIP(
                        GzipLevel::try_new(o.level.unwrap_or(6) as u32)
                            .map_err(|e| Error::config(e.to_string()))?,
                    ),
                    "zstd" => ParquetCompression::ZSTD(
                        ZstdLevel::try_new(o.level.unwrap_or(1))
                            .map_err(|e| Error::config(e.to_string()))?,
                    ),
                    other => {
                        return Err(Error::config(format!(
                            "Parquet compression `{other}` is not available: use none, snappy, gzip or zstd"
                        )));
                    }
                };
                let mut props = WriterProperties::builder().set_compression(codec);
                let mut group_rows = DEFAULT_MAX_ROW_GROUP_ROW_COUNT;
                if let Some(rows) = o.row_group_rows {
                    group_rows = rows.max(1);
                    props = props.set_max_row_group_row_count(Some(group_rows));
                }
                Writer::ParquetPending {
                    file,
                    props,
                    group_rows,
                }
            }
        };
        Ok(Encoder {
            path: path.to_string(),
            schema,
            writer: Some(writer),
            bytes_written,
            staging_token,
        })
    }

    /// What cleans up after this object if the process dies before it is
    /// finished or published ([`ObjectStore::discard_orphan`]).
    pub fn staging_token(&self) -> Option<&str> {
        self.staging_token.as_deref()
    }

    /// Append one batch; its schema must be the encoder's.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), Error> {
        if !sluice_types::same_fields(&batch.schema(), &self.schema) {
            return Err(Error::data(format!(
                "{}: batch schema {:?} differs from the file's {:?}",
                self.path,
                batch.schema().fields(),
                self.schema.fields()
            )));
        }
        if matches!(self.writer, Some(Writer::ParquetPending { .. })) {
            self.open_parquet(Some(batch))?;
        }
        let result = match self.writer.as_mut() {
            Some(Writer::Csv(w)) => w.write(batch),
            Some(Writer::Json(w)) => w.write(batch),
            Some(Writer::Parquet(w)) => {
                crate::parquet_compat::writable_batch(batch).and_then(|b| {
                    w.write(&b)
                        .map_err(|e| ArrowError::ExternalError(Box::new(e)))
                })
            }
            Some(Writer::ParquetPending { .. }) => unreachable!("opened above"),
            None => {
                return Err(Error::data(format!(
                    "{}: encoder already finished",
                    self.path
                )));
            }
        };
        result.map_err(|e| Error::data(format!("{}: {e}", self.path)))
    }

    /// Start the Parquet writer, with the columns `first` shows to be
    /// too varied for a dictionary written plain.
    fn open_parquet(&mut self, first: Option<&RecordBatch>) -> Result<(), Error> {
        let Some(Writer::ParquetPending {
            file,
            mut props,
            group_rows,
        }) = self.writer.take()
        else {
            return Ok(());
        };
        if let Some(batch) = first {
            let limit = DEFAULT_DICTIONARY_PAGE_SIZE_LIMIT;
            for i in crate::dictionary::plain_columns(batch, group_rows, limit) {
                let name = self.schema.field(i).name().clone();
                props = props.set_column_dictionary_enabled(ColumnPath::new(vec![name]), false);
            }
        }
        let writer = ArrowWriter::try_new(
            file,
            crate::parquet_compat::writable_schema(&self.schema),
            Some(props.build()),
        )
        .map_err(|e| Error::data(format!("{}: {e}", self.path)))?;
        self.writer = Some(Writer::Parquet(writer));
        Ok(())
    }

    /// The path being written, relative to the store's root.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    /// Flush and close the object.
    ///
    /// # Errors
    /// When the end of the file cannot be written or stored; the object is
    /// then discarded.
    pub fn finish(&mut self) -> Result<Finished, Error> {
        if matches!(self.writer, Some(Writer::ParquetPending { .. })) {
            // No batch came: a file with the schema and no rows.
            self.open_parquet(None)?;
        }
        let err = |e: String| Error::data(format!("{}: {e}", self.path));
        let out = match self.writer.take() {
            Some(Writer::Csv(w)) => w.into_inner().finish().map_err(|e| err(e.to_string()))?,
            Some(Writer::Json(mut w)) => {
                w.finish().map_err(|e| err(e.to_string()))?;
                w.into_inner().finish().map_err(|e| err(e.to_string()))?
            }
            Some(Writer::Parquet(w)) => w.into_inner().map_err(|e| err(e.to_string()))?,
            Some(Writer::ParquetPending { .. }) => unreachable!("opened above"),
            None => return Err(err("encoder already finished".into())),
        };
        let object = out
            .inner
            .into_inner()
            .map_err(|e| Error::io(&self.path, e.into_error()))?;
        let staged = object.finish()?;
        Ok(Finished {
            bytes: self.bytes_written(),
            staged,
        })
    }
}
