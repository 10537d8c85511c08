//! The reader against Arrow's own CSV reader, on generated files with
//! every quoting rule, line ending and type, read through inputs that hand
//! over a few bytes at a time.

use std::io::Read;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::{CsvOptions, CsvReader};

/// Hands over at most `step` bytes per read, cycling through 1..=step, so
/// records are cut everywhere.
struct Trickle<R> {
    inner: R,
    step: usize,
    next: usize,
}

impl<R: Read> Read for Trickle<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.next = self.next % self.step + 1;
        let n = self.next.min(buf.len());
        self.inner.read(&mut buf[..n])
    }
}

struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, true),
        Field::new("int", DataType::Int64, true),
        Field::new("float", DataType::Float64, true),
        Field::new("date", DataType::Date32, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("small", DataType::Int32, true),
        Field::new("amount", DataType::Decimal128(12, 2), true),
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new(
            "zoned",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+02:00".into())),
            true,
        ),
        Field::new("view", DataType::Utf8View, true),
        Field::new(
            "dict",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
        Field::new("nothing", DataType::Null, true),
        Field::new("f32", DataType::Float32, true),
    ]))
}

/// One field of column `column`, raw as it appears in the file.
fn field(r: &mut Random, column: usize, quote: u8, escape: Option<u8>, delimiter: u8) -> Vec<u8> {
    if r.below(9) == 0 {
        return Vec::new();
    }
    let q = quote as char;
    let value = match column {
        0 | 9 | 10 => {
            let words = [
                "plain",
                "two words",
                "ünïcødé",
                "",
                "x",
                "a;b",
                "a,b",
                "tab\there",
            ];
            let word = words[r.below(words.len() as u64) as usize];
            match r.below(6) {
                0 => format!("{q}{word}{q}"),
                1 => format!("{q}say {q}{q}hi{q}{q}{q}"),
                2 => format!("{q}line\nbreak{q}"),
                3 => format!("{q}crlf\r\ninside{d}and delim{q}", d = delimiter as char),
                4 => match escape {
                    Some(e) => format!("{q}esc{e}{q}aped{q}", e = e as char),
                    None => format!("{q}ab{q}cd"),
                },
                _ => {
                    if word.bytes().any(|b| b == delimiter) {
                        format!("{q}{word}{q}")
                    } else {
                        word.to_string()
                    }
                }
            }
        }
        1 => match r.below(4) {
            0 => format!("{}", r.next() as i64 - (1 << 30)),
            1 => format!("-{}", r.next() * r.next()),
            2 => "+17".into(),
            _ => format!("{}", i64::MAX - r.below(10) as i64),
        },
        2 | 12 => match r.below(5) {
            0 => format!("{}.{:02}", r.below(100_000), r.below(100)),
            1 => format!("{}", r.next() as f64 / 7.0),
            2 => "1e-5".into(),
            3 => format!("-0.{}", r.next()),
            _ => format!("{}", r.below(1000)),
        },
        3 => format!(
            "{:04}-{:02}-{:02}",
            1900 + r.below(200),
            1 + r.below(12),
            1 + r.below(28)
        ),
        4 => ["true", "False", "TRUE", "false"][r.below(4) as usize].into(),
        5 => format!("{}", r.below(1 << 20) as i64 - (1 << 19)),
        6 => format!("{}.{:02}", r.below(1_000_000), r.below(100)),
        7 => format!(
            "2024-{:02}-{:02}T{:02}:{:02}:{:02}",
            1 + r.below(12),
            1 + r.below(28),
            r.below(24),
            r.below(60),
            r.below(60)
        ),
        8 => format!(
            "2024-03-{:02} {:02}:15:00{}",
            1 + r.below(28),
            r.below(24),
            ["", "Z", "+05:30"][r.below(3) as usize]
        ),
        11 => "ignored".into(),
        _ => unreachable!(),
    };
    value.into_bytes()
}

/// A file of `rows` records with mixed line endings and blank lines.
fn file(r: &mut Random, rows: usize, quote: u8, escape: Option<u8>, delimiter: u8) -> Vec<u8> {
    let columns = schema().fields().len();
    let names: Vec<String> = schema().fields().iter().map(|f| f.name().clone()).collect();
    let mut out = names.join(&(delimiter as char).to_string()).into_bytes();
    out.extend_from_slice(b"\r\n");
    for row in 0..rows {
        for c in 0..columns {
            if c > 0 {
                out.push(delimiter);
            }
            out.extend(field(r, c, quote, escape, delimiter));
        }
        let last = row + 1 == rows;
        match r.below(8) {
            _ if last && r.below(2) == 0 => {}
            0 => out.extend_from_slice(b"\r\n"),
            1 => out.push(b'\r'),
            2 => out.extend_from_slice(b"\n\n"),
            _ => out.push(b'\n'),
        }
    }
    out
}

fn ours(data: &[u8], options: CsvOptions, step: usize) -> Result<RecordBatch, String> {
    let input = Trickle {
        inner: data,
        step,
        next: 0,
    };
    let batches: Result<Vec<_>, _> = CsvReader::new(input, schema(), options).collect();
    let batches = batches.map_err(|e| e.to_string())?;
    Ok(concat_batches(&schema(), &batches).unwrap())
}

fn arrows(data: &[u8], options: &CsvOptions) -> RecordBatch {
    let mut format = arrow::csv::reader::Format::default()
        .with_header(options.header)
        .with_delimiter(options.delimiter)
        .with_quote(options.quote);
    if let Some(e) = options.escape {
        format = format.with_escape(e);
    }
    if let Some(null) = &options.null_string {
        let re = regex::Regex::new(&format!("^{}$", regex::escape(null))).unwrap();
        format = format.with_null_regex(re);
    }
    let reader = arrow::csv::ReaderBuilder::new(schema())
        .with_format(format)
        .with_batch_size(100)
        .build(data)
        .unwrap();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    concat_batches(&schema(), &batches).unwrap()
}

fn options(delimiter: u8, quote: u8, escape: Option<u8>, batch_size: usize) -> CsvOptions {
    CsvOptions {
        delimiter,
        quote,
        escape,
        null_string: None,
        header: true,
        batch_size,
        first_line: 1,
    }
}

#[test]
fn reads_what_arrow_reads() {
    let mut r = Random(7);
    for (round, (delimiter, quote, escape)) in [
        (b',', b'"', None),
        (b';', b'"', None),
        (b'\t', b'\'', Some(b'\\')),
        (b'|', b'"', Some(b'\\')),
    ]
    .into_iter()
    .cycle()
    .take(24)
    .enumerate()
    {
        let rows = [1, 2, 7, 300, 1000][round % 5];
        let data = file(&mut r, rows, quote, escape, delimiter);
        for (batch_size, step) in [(1, 3), (7, 64), (1000, 1 << 20), (64, 13)] {
            let opts = options(delimiter, quote, escape, batch_size);
            let want = arrows(&data, &opts);
            let got = ours(&data, opts, step).unwrap();
            assert_eq!(got.num_rows(), want.num_rows(), "round {round}, rows");
            for (i, f) in schema().fields().iter().enumerate() {
                assert_eq!(
                    got.column(i).as_ref(),
                    want.column(i).as_ref(),
                    "round {round}, batch {batch_size}, step {step}, column {}",
                    f.name()
                );
            }
        }
    }
}

#[test]
fn null_string_replaces_empty_as_null() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
    ]));
    let data = b"s,n\n,NULL\nNULL,5\n\"\",7\n";
    let opts = CsvOptions {
        null_string: Some("NULL".into()),
        ..options(b',', b'"', None, 10)
    };
    let batches: Vec<_> = CsvReader::new(&data[..], schema.clone(), opts)
        .map(Result::unwrap)
        .collect();
    let b = &batches[0];
    let s = b
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    let n = b
        .column(1)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap();
    assert_eq!(s.iter().collect::<Vec<_>>(), [Some(""), None, Some("")]);
    assert_eq!(n.iter().collect::<Vec<_>>(), [None, Some(5), Some(7)]);
}

#[test]
fn errors_name_the_line_a_record_starts_on() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
    ]));
    let read = |data: &[u8], first_line| {
        let opts = CsvOptions {
            first_line,
            ..options(b',', b'"', None, 2)
        };
        CsvReader::new(data, schema.clone(), opts)
            .collect::<Result<Vec<_>, _>>()
            .unwrap_err()
            .to_string()
    };
    // A quoted line break and a blank line come before the bad value.
    let e = read(b"s,n\n\"a\nb\",1\n\nc,2\nd,x3\n", 1);
    assert!(
        e.contains("line 6") && e.contains("`n`") && e.contains("\"x3\""),
        "{e}"
    );
    // Lines skipped before the header count.
    let e = read(b"s,n\na,x\n", 3);
    assert!(e.contains("line 4"), "{e}");
    let e = read(b"s,n\na,1,9\n", 1);
    assert!(
        e.contains("line 2") && e.contains("more than the 2 fields"),
        "{e}"
    );
    let e = read(b"s,n\na,1\nb\n", 1);
    assert!(e.contains("line 3") && e.contains("1 fields"), "{e}");
    let e = read(b"s,n\n\xff\xfe,1\n", 1);
    assert!(e.contains("line 2") && e.contains("UTF-8"), "{e}");
}

#[test]
fn a_record_longer_than_the_buffer_is_read_whole() {
    let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
    let long = "x".repeat(3 * super::READ_BYTES + 5);
    let data = format!("s\n\"{long}\"\nshort\n");
    let batches: Vec<_> = CsvReader::new(data.as_bytes(), schema, options(b',', b'"', None, 10))
        .map(Result::unwrap)
        .collect();
    let s = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    assert_eq!(s.value(0).len(), long.len());
    assert_eq!(s.value(1), "short");
}
