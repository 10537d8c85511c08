//! `batch.from-json-lines` and `batch.to-json-lines` on a 64 MiB batch
//! allocate a small multiple of the text, not a copy per row or a decoder
//! sized for everything at once. A counting allocator (this test binary's
//! own) measures the peak.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use sluice_codec::{batch_to_json_lines, json_lines_to_batch};

struct Counting;

// The one unsafe thing here: a global allocator, forwarding to the
// system's and counting.

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = NOW.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        NOW.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            grew(new_size - layout.size());
        } else {
            NOW.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The peak allocated above what was live when `f` started.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = NOW.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - base)
}

#[test]
fn a_64_mib_batch_costs_a_small_multiple_of_its_text() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("amount", DataType::Decimal128(12, 2), true),
        Field::new("ratio", DataType::Float64, true),
        Field::new("active", DataType::Boolean, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]));
    let mut text = String::with_capacity(65 << 20);
    let mut rows = 0;
    while text.len() < 64 << 20 {
        text.push_str(&format!(
            "{{\"id\":{rows},\"name\":\"customer number {rows}\",\"amount\":\"{}.{:02}\",\"ratio\":{},\"active\":{},\"at\":\"2026-12-07T10:00:00Z\"}}\n",
            rows % 100_000,
            rows % 100,
            rows as f64 / 7.0,
            rows % 2 == 0
        ));
        rows += 1;
    }
    let (batch, decoding) = peak_during(|| json_lines_to_batch(schema.clone(), &text).unwrap());
    assert_eq!(batch.num_rows(), rows);
    let arrow_bytes = batch.get_array_memory_size();
    println!(
        "{} MiB of JSON Lines, {rows} rows: decoding peaked at {:.2}× the text (the batch is {:.2}×)",
        text.len() >> 20,
        decoding as f64 / text.len() as f64,
        arrow_bytes as f64 / text.len() as f64
    );
    assert!(
        decoding <= 3 * text.len(),
        "decoding peaked at {decoding} bytes for {} bytes of text",
        text.len()
    );
    drop(text);

    let (back, encoding) = peak_during(|| batch_to_json_lines(&batch).unwrap());
    println!(
        "encoding it again peaked at {:.2}× the text it made",
        encoding as f64 / back.len() as f64
    );
    assert!(
        encoding <= 3 * back.len(),
        "encoding peaked at {encoding} bytes for {} bytes of text",
        back.len()
    );
    assert_eq!(back.lines().count(), rows);
}
