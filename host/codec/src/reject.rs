//! Skipping malformed rows (`on_invalid: skip`) without losing them.
//!
//! Records are framed with `csv-core` so the exact bytes of each batch are
//! known. A batch that Arrow decodes cleanly costs one extra tokenizing
//! pass; one that fails is decoded again row by row, keeping the good rows
//! and recording each bad one (file, line, error, text) as a [`Reject`].

use std::io::BufRead;
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use csv_core::ReadRecordResult;

/// A row that was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The object it came from.
    pub path: String,
    /// 1-based line where the row starts.
    pub line: u64,
    /// Why it was refused.
    pub error: String,
    /// The row as it was in the file.
    pub text: String,
}

/// Where a plugin instance's rejects go: read by the pipeline.
pub type RejectLog = Arc<Mutex<Vec<Reject>>>;

/// What a skipping reader decodes into and where it records what it could
/// not decode.
pub(crate) struct Salvage {
    schema: SchemaRef,
    path: String,
    log: RejectLog,
    /// Rows rejected so far; shared with the decoder that reports them.
    pub(crate) rejected: Arc<std::sync::atomic::AtomicU64>,
}

impl Salvage {
    fn new(schema: SchemaRef, path: String, log: RejectLog) -> Self {
        Salvage {
            schema,
            path,
            log,
            rejected: Arc::default(),
        }
    }

    /// Decode `records` (raw bytes and starting line) as one batch; if that
    /// fails, one by one, keeping the good rows and recording the bad ones.
    /// `None` when every record was bad.
    fn decode(
        &self,
        records: Vec<(Vec<u8>, u64)>,
        decode: impl Fn(&[u8], usize) -> Result<Option<RecordBatch>, ArrowError>,
    ) -> Result<Option<RecordBatch>, ArrowError> {
        let mut bytes = Vec::with_capacity(records.iter().map(|(r, _)| r.len() + 1).sum());
        for (r, _) in &records {
            bytes.extend_from_slice(r);
            if !r.ends_with(b"\n") {
                bytes.push(b'\n');
            }
        }
        if let Ok(batch) = decode(&bytes, records.len())
            && batch.as_ref().map(|b| b.num_rows()) == Some(records.len())
        {
            return Ok(batch);
        }
        // Slow path, for this batch only: row by row.
        let mut good = Vec::new();
        for (record, line) in records {
            match decode(&record, 1) {
                Ok(Some(b)) if b.num_rows() == 1 => good.push(b),
                outcome => {
                    let error = match outcome {
                        Err(e) => e.to_string(),
                        _ => "no values in the row".into(),
                    };
                    self.rejected
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let text = String::from_utf8_lossy(&record)
                        .trim_end_matches(['\r', '\n'])
                        .to_string();
                    if let Ok(mut log) = self.log.lock() {
                        log.push(Reject {
                            path: self.path.clone(),
                            line,
                            error,
                            text,
                        });
                    }
                }
            }
        }
        if good.is_empty() {
            Ok(None)
        } else {
            arrow::compute::concat_batches(&self.schema, &good).map(Some)
        }
    }
}

/// Options the skipping reader needs.
pub(crate) struct CsvFraming {
    pub delimiter: u8,
    pub quote: u8,
    pub escape: Option<u8>,
    pub header: bool,
    /// Line number of the first line the reader sees (after `skip_lines`).
    pub first_line: u64,
}

/// Yields batches, skipping and recording rows that do not parse.
pub(crate) struct SkippingCsv {
    input: Box<dyn BufRead + Send>,
    tokenizer: csv_core::Reader,
    format: arrow::csv::reader::Format,
    batch_size: usize,
    pub(crate) salvage: Salvage,
    line: u64,
    header_pending: bool,
    done: bool,
}

impl SkippingCsv {
    pub(crate) fn new(
        input: Box<dyn BufRead + Send>,
        framing: CsvFraming,
        schema: SchemaRef,
        format: arrow::csv::reader::Format,
        batch_size: usize,
        path: String,
        log: RejectLog,
    ) -> Self {
        let tokenizer = csv_core::ReaderBuilder::new()
            .delimiter(framing.delimiter)
            .quote(framing.quote)
            .escape(framing.escape)
            .double_quote(framing.escape.is_none())
            .build();
        SkippingCsv {
            input,
            tokenizer,
            format: format.with_header(false),
            batch_size: batch_size.max(1),
            salvage: Salvage::new(schema, path, log),
            line: framing.first_line,
            header_pending: framing.header,
            done: false,
        }
    }

    /// The raw bytes of the next record, and the line it starts on.
    fn next_record(&mut self) -> std::io::Result<Option<(Vec<u8>, u64)>> {
        Ok(self.next_record_fields()?.map(|(r, line, _)| (r, line)))
    }

    /// The next record's raw bytes, starting line and number of fields.
    fn next_record_fields(&mut self) -> std::io::Result<Option<(Vec<u8>, u64, usize)>> {
        let mut record = Vec::new();
        let mut out = [0u8; 4096];
        let mut ends = [0usize; 256];
        let mut fields = 0;
        loop {
            let buf = self.input.fill_buf()?;
            let (res, nin, _, nend) = self.tokenizer.read_record(buf, &mut out, &mut ends);
            fields += nend;
            record.extend_from_slice(&buf[..nin]);
            self.input.consume(nin);
            match res {
                ReadRecordResult::InputEmpty
                | ReadRecordResult::OutputFull
                | ReadRecordResult::OutputEndsFull => {
                    continue;
                }
                ReadRecordResult::Record => {
                    let start = self.line;
                    self.line += record.iter().filter(|&&b| b == b'\n').count() as u64;
                    if record.iter().all(|b| b.is_ascii_whitespace()) {
                        record.clear();
                        fields = 0;
                        continue;
                    }
                    return Ok(Some((record, start, fields)));
                }
                ReadRecordResult::End => {
                    return Ok(None);
                }
            }
        }
    }

    /// The header and the first `rows` records with as many fields as the
    /// header: a sample that type inference can read despite bad rows.
    pub(crate) fn clean_sample(mut self, rows: usize) -> std::io::Result<Vec<u8>> {
        let mut sample = Vec::new();
        let mut expected = None;
        let mut kept = 0;
        while kept <= rows {
            let Some((record, _, fields)) = self.next_record_fields()? else {
                break;
            };
            if *expected.get_or_insert(fields) != fields {
                continue;
            }
            sample.extend_from_slice(&record);
            if !record.ends_with(b"\n") {
                sample.push(b'\n');
            }
            kept += 1;
        }
        Ok(sample)
    }

    fn decode(&self, bytes: &[u8], rows: usize) -> Result<Option<RecordBatch>, ArrowError> {
        let mut decoder = arrow::csv::ReaderBuilder::new(self.salvage.schema.clone())
            .with_format(self.format.clone())
            .with_batch_size(rows + 1)
            .build_decoder();
        let mut at = 0;
        while at < bytes.len() {
            let n = decoder.decode(&bytes[at..])?;
            if n == 0 {
                break;
            }
            at += n;
        }
        // A record without its final newline is complete at the end.
        decoder.decode(&[])?;
        decoder.flush()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        let io = |e: std::io::Error| ArrowError::ExternalError(Box::new(e));
        if self.header_pending {
            self.header_pending = false;
            self.next_record().map_err(io)?;
        }
        while !self.done {
            let mut records = Vec::new();
            while records.len() < self.batch_size {
                match self.next_record().map_err(io)? {
                    Some(r) => records.push(r),
                    None => {
                        self.done = true;
                        break;
                    }
                }
            }
            if records.is_empty() {
                break;
            }
            let kept = self
                .salvage
                .decode(records, |bytes, rows| self.decode(bytes, rows))?;
            if kept.is_some() {
                return Ok(kept);
            }
        }
        Ok(None)
    }
}

impl Iterator for SkippingCsv {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

/// JSON Lines with `on_invalid: skip`: batches of lines decode together;
/// a batch that fails is decoded again line by line, and each bad line is
/// recorded as a [`Reject`].
pub(crate) struct SkippingJson {
    input: Box<dyn BufRead + Send>,
    batch_size: usize,
    pub(crate) salvage: Salvage,
    line: u64,
    done: bool,
}

impl SkippingJson {
    pub(crate) fn new(
        input: Box<dyn BufRead + Send>,
        schema: SchemaRef,
        batch_size: usize,
        path: String,
        log: RejectLog,
        first_line: u64,
    ) -> Self {
        SkippingJson {
            input,
            batch_size: batch_size.max(1),
            salvage: Salvage::new(schema, path, log),
            line: first_line,
            done: false,
        }
    }

    fn decode(&self, bytes: &[u8], rows: usize) -> Result<Option<RecordBatch>, ArrowError> {
        let mut decoder = arrow::json::ReaderBuilder::new(self.salvage.schema.clone())
            .with_batch_size(rows + 1)
            .build_decoder()?;
        let mut at = 0;
        while at < bytes.len() {
            let n = decoder.decode(&bytes[at..])?;
            if n == 0 {
                break;
            }
            at += n;
        }
        decoder.flush()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        while !self.done {
            let mut lines = Vec::new();
            while lines.len() < self.batch_size {
                let mut line = Vec::new();
                let n = self
                    .input
                    .read_until(b'\n', &mut line)
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                if n == 0 {
                    self.done = true;
                    break;
                }
                let at = self.line;
                self.line += 1;
                if line.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                lines.push((line, at));
            }
            if lines.is_empty() {
                break;
            }
            let kept = self
                .salvage
                .decode(lines, |bytes, rows| self.decode(bytes, rows))?;
            if kept.is_some() {
                return Ok(kept);
            }
        }
        Ok(None)
    }
}

impl Iterator for SkippingJson {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}
