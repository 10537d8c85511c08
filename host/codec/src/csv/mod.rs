//! A CSV reader that parses fields straight into Arrow columns.
//!
//! Arrow's CSV reader tokenizes a batch byte by byte into a buffer of
//! records, then parses each column from there; on one core that was a
//! fifth of converting CSV to Parquet. This one finds field ends eight
//! bytes at a time and parses each field into its column as it goes, with
//! fast paths for the shapes inference produces (integers, plain decimals,
//! `YYYY-MM-DD`). It reads what Arrow's reads, the same way: the quoting
//! rules of `csv-core` (doubled quotes, an optional escape byte, `\r`, `\n`
//! or `\r\n` ending a record, blank lines skipped), empty fields (or
//! `null_string`) as nulls, and Arrow's own parsers for every value the
//! fast paths do not take. Errors name the line a record starts on.

mod column;
mod scan;

use std::io::Read;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;

use column::{Column, Refused};
use scan::FieldEnd;

/// How the file is written.
#[derive(Debug, Clone)]
pub(crate) struct CsvOptions {
    pub delimiter: u8,
    pub quote: u8,
    pub escape: Option<u8>,
    /// The exact text of a null; empty fields when `None`.
    pub null_string: Option<String>,
    /// Skip the first record.
    pub header: bool,
    pub batch_size: usize,
    /// The line number of the first line read (after `skip_lines`).
    pub first_line: u64,
}

/// Whether the reader can read columns of `data_type`.
pub(crate) fn supported(data_type: &arrow::datatypes::DataType) -> bool {
    column::supported(data_type)
}

/// Bytes read from the input at a time; a record longer than this grows it.
const READ_BYTES: usize = 1 << 20;

/// Reads batches of `schema` from CSV text.
pub(crate) struct CsvReader<R> {
    input: R,
    buf: Vec<u8>,
    /// `buf[start..end]` is read and not yet parsed.
    start: usize,
    end: usize,
    eof: bool,
    done: bool,
    records: Records,
}

/// What parsing records needs besides the bytes.
struct Records {
    schema: SchemaRef,
    options: CsvOptions,
    field_end: FieldEnd,
    columns: Vec<Column>,
    /// Rows in the batch being built, and the line each starts on.
    rows: usize,
    lines: Vec<u64>,
    /// The line `buf[start]` is on.
    line: u64,
    skip_header: bool,
    /// Unescaped bytes of a quoted field that had quotes or escapes inside.
    scratch: Vec<u8>,
}

/// How parsing one record went.
enum Parsed {
    /// A record ended at this offset.
    Record(usize),
    /// The record goes on past what has been read.
    Incomplete,
    /// No record left.
    End,
}

/// Where a field's value is.
enum Value {
    Bytes(usize, usize),
    Scratch,
}

impl<R: Read> CsvReader<R> {
    pub(crate) fn new(input: R, schema: SchemaRef, options: CsvOptions) -> Self {
        let batch = options.batch_size.max(1);
        let columns = schema
            .fields()
            .iter()
            .map(|f| Column::new(f.data_type(), batch))
            .collect();
        CsvReader {
            input,
            buf: vec![0; READ_BYTES],
            start: 0,
            end: 0,
            eof: false,
            done: false,
            records: Records {
                field_end: FieldEnd::new(options.delimiter),
                line: options.first_line,
                skip_header: options.header,
                schema,
                options,
                columns,
                rows: 0,
                lines: Vec::with_capacity(batch),
                scratch: Vec::new(),
            },
        }
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        let batch_size = self.records.options.batch_size.max(1);
        while !self.done && self.records.rows < batch_size {
            match self
                .records
                .parse(&self.buf[..self.end], self.start, self.eof)?
            {
                Parsed::Record(next) => self.start = next,
                Parsed::End => self.done = true,
                Parsed::Incomplete => self.fill()?,
            }
        }
        if self.records.rows == 0 {
            return Ok(None);
        }
        self.records.finish().map(Some)
    }

    /// Keep what is not parsed yet, read more after it; at the end of the
    /// input, mark it so the last record can end there.
    fn fill(&mut self) -> Result<(), ArrowError> {
        if self.eof {
            // `parse` says Incomplete only before the end of the input.
            self.done = true;
            return Ok(());
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.end == self.buf.len() {
            // One record fills the buffer: make room for the rest of it.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let read = loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ArrowError::IoError(e.to_string(), e)),
            }
        };
        if read == 0 {
            self.eof = true;
        }
        self.end += read;
        Ok(())
    }
}

impl<R: Read> Iterator for CsvReader<R> {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_batch() {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Records {
    /// Parse the record starting at `data[at]` into the columns (or skip
    /// it, for the header).
    fn parse(&mut self, data: &[u8], mut at: usize, eof: bool) -> Result<Parsed, ArrowError> {
        // Line ends before a record are blank lines: skipped.
        let mut line = self.line;
        loop {
            match data.get(at) {
                None if eof => return Ok(Parsed::End),
                None => return Ok(Parsed::Incomplete),
                Some(b'\n') => at += 1,
                Some(b'\r') => match data.get(at + 1) {
                    Some(b'\n') => at += 2,
                    None if !eof => return Ok(Parsed::Incomplete),
                    _ => at += 1,
                },
                Some(_) => break,
            }
            line += 1;
        }
        let record_line = line;
        let skip = self.skip_header;
        let columns = self.columns.len();
        let (quote, delimiter) = (self.options.quote, self.options.delimiter);
        let mut field = 0;
        let end = loop {
            let (value, next) = if data.get(at) == Some(&quote) {
                match self.quoted(data, at, eof, &mut line)? {
                    Some(found) => found,
                    None => return self.incomplete(),
                }
            } else {
                match self.field_end.find(data, at) {
                    Some(next) => (Value::Bytes(at, next), next),
                    None if eof => (Value::Bytes(at, data.len()), data.len()),
                    None => return self.incomplete(),
                }
            };
            if !skip {
                if field == columns {
                    return Err(self.error(
                        record_line,
                        format!("more than the {columns} fields the header or schema has"),
                    ));
                }
                let bytes = match value {
                    Value::Bytes(from, to) => &data[from..to],
                    Value::Scratch => &self.scratch[..],
                };
                let null = match &self.options.null_string {
                    None => bytes.is_empty(),
                    Some(null) => bytes == null.as_bytes(),
                };
                let pushed = self.columns[field].push((!null).then_some(bytes));
                if let Err(Refused) = pushed {
                    return Err(self.refused(record_line, field, bytes));
                }
            }
            field += 1;
            match data.get(next) {
                Some(&b) if b == delimiter => at = next + 1,
                Some(b'\n') => break next + 1,
                Some(b'\r') => match data.get(next + 1) {
                    Some(b'\n') => break next + 2,
                    None if !eof => return self.incomplete(),
                    _ => break next + 1,
                },
                None if eof => break next,
                None => return self.incomplete(),
                Some(_) => {
                    return Err(self.error(record_line, "a field ends where it cannot".into()));
                }
            }
        };
        if skip {
            self.skip_header = false;
        } else {
            if field < columns {
                return Err(self.error(
                    record_line,
                    format!("{field} fields, the header or schema has {columns}"),
                ));
            }
            self.rows += 1;
            self.lines.push(record_line);
        }
        // The record's own line end, unless the input ended without one.
        self.line = line + u64::from(end > 0 && matches!(data[end - 1], b'\n' | b'\r'));
        Ok(Parsed::Record(end))
    }

    /// A quoted field starting at `data[at]`: its value and the offset just
    /// after it, or `None` if it goes on past what has been read.
    fn quoted(
        &mut self,
        data: &[u8],
        at: usize,
        eof: bool,
        line: &mut u64,
    ) -> Result<Option<(Value, usize)>, ArrowError> {
        let (quote, escape) = (self.options.quote, self.options.escape);
        let mut segment = at + 1;
        let mut i = segment;
        let mut copied = false;
        self.scratch.clear();
        // Inside the quotes: up to the closing quote, unescaping as csv-core does.
        let closing = loop {
            let Some(b) = data.get(i).copied() else {
                if !eof {
                    return Ok(None);
                }
                // An unterminated quote runs to the end of the input.
                let end = data.len();
                return Ok(Some(self.taken(data, at, segment, end, end, copied, line)));
            };
            if b == quote {
                match data.get(i + 1) {
                    Some(&next) if next == quote => {
                        // A doubled quote is one quote.
                        self.scratch.extend_from_slice(&data[segment..=i]);
                        copied = true;
                        i += 2;
                        segment = i;
                    }
                    None if !eof => return Ok(None),
                    _ => break i,
                }
            } else if Some(b) == escape {
                let Some(&escaped) = data.get(i + 1) else {
                    if !eof {
                        return Ok(None);
                    }
                    self.scratch.extend_from_slice(&data[segment..i]);
                    return Ok(Some((Value::Scratch, data.len())));
                };
                self.scratch.extend_from_slice(&data[segment..i]);
                self.scratch.push(escaped);
                copied = true;
                i += 2;
                segment = i;
            } else {
                i += 1;
            }
        };
        let after = closing + 1;
        match data.get(after) {
            Some(&b) if !self.field_end.ends(b) => {
                // Text after the closing quote belongs to the field, up to
                // the next delimiter or line end (`"ab"c` is `abc`).
                let next = match self.field_end.find(data, after) {
                    Some(next) => next,
                    None if eof => data.len(),
                    None => return Ok(None),
                };
                self.scratch.extend_from_slice(&data[segment..closing]);
                self.scratch.extend_from_slice(&data[after..next]);
                *line += count_newlines(&data[at..next]);
                Ok(Some((Value::Scratch, next)))
            }
            _ => Ok(Some(
                self.taken(data, at, segment, closing, after, copied, line),
            )),
        }
    }

    /// The value of a quoted field whose last unescaped run is
    /// `data[segment..to]`; the field started at `at`, and what follows it
    /// is at `next`.
    #[allow(clippy::too_many_arguments)]
    fn taken(
        &mut self,
        data: &[u8],
        at: usize,
        segment: usize,
        to: usize,
        next: usize,
        copied: bool,
        line: &mut u64,
    ) -> (Value, usize) {
        *line += count_newlines(&data[at..to]);
        if copied {
            self.scratch.extend_from_slice(&data[segment..to]);
            (Value::Scratch, next)
        } else {
            (Value::Bytes(segment, to), next)
        }
    }

    /// Undo the part of a record that was parsed before the bytes ran out.
    fn incomplete(&mut self) -> Result<Parsed, ArrowError> {
        for column in &mut self.columns {
            column.truncate(self.rows);
        }
        Ok(Parsed::Incomplete)
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let rows = std::mem::take(&mut self.rows);
        let capacity = self.options.batch_size.max(1);
        let lines = std::mem::replace(&mut self.lines, Vec::with_capacity(capacity));
        let fields = self.schema.fields().clone();
        let mut columns = Vec::with_capacity(fields.len());
        for (i, field) in fields.iter().enumerate() {
            match self.columns[i].finish(capacity, field.data_type()) {
                Ok(array) => columns.push(array),
                Err((row, why)) => {
                    let line = lines.get(row).copied().unwrap_or(self.line);
                    return Err(self.column_error(line, i, &why));
                }
            }
        }
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
    }

    fn error(&self, line: u64, what: String) -> ArrowError {
        ArrowError::CsvError(format!("line {line}: {what}"))
    }

    fn column_error(&self, line: u64, column: usize, why: &str) -> ArrowError {
        let name = self.schema.field(column).name();
        ArrowError::ParseError(format!("line {line}: column `{name}`: {why}"))
    }

    fn refused(&self, line: u64, column: usize, bytes: &[u8]) -> ArrowError {
        let text = String::from_utf8_lossy(bytes);
        let data_type = self.schema.field(column).data_type();
        let why = if matches!(data_type, arrow::datatypes::DataType::Utf8) {
            "the batch's text passes 2 GiB".to_string()
        } else {
            column::refused(&text, data_type)
        };
        self.column_error(line, column, &why)
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests;
