//! The host side of the `arrays` interface: a batch handed to a plugin
//! buffer by buffer.
//!
//! Each Arrow buffer is lowered straight from the host's memory into the
//! plugin's (as a `bytes::Bytes` that owns a reference to the buffer), so
//! the rows are copied once. `bindgen!` would type the buffers as
//! `Vec<Vec<u8>>`, which costs a copy of its own, so this interface is
//! linked by hand with record types derived here.

use arrow::array::{ArrayData, MutableArrayData, RecordBatch};
use arrow::buffer::Buffer;
use bytes::Bytes;
use wasmtime::component::{ComponentType, Linker, Lower, Resource};

use crate::batch::Batch;
use crate::capability::HostState;

/// `array-layout` in `wit/arrays.wit`.
#[derive(ComponentType, Lower, Debug, Clone, Copy, PartialEq, Eq)]
#[component(record)]
pub(crate) struct ArrayLayout {
    length: u64,
    offset: u64,
    #[component(name = "null-count")]
    null_count: u64,
    #[component(name = "validity-offset")]
    validity_offset: u64,
    buffers: u32,
    children: u32,
}

/// `batch-arrays` in `wit/arrays.wit`.
#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct BatchArrays {
    rows: u64,
    arrays: Vec<ArrayLayout>,
    buffers: Vec<Bytes>,
}

/// Link `sluice:plugin/arrays@<version>`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>, version: &str) -> wasmtime::Result<()> {
    linker
        .instance(&format!("sluice:plugin/arrays@{version}"))?
        .func_wrap(
            "to-arrays",
            |mut store: wasmtime::StoreContextMut<'_, HostState>, (batch,): (Resource<Batch>,)| {
                store.data_mut().guard_trap("arrays.to-arrays", |state| {
                    let batch = state.table.get(&batch)?;
                    Ok((lay_out(&batch.0),))
                })
            },
        )
}

/// A sliced array is compacted before it crosses when its buffers hold more
/// than this beyond what the slice needs: copying the slice alone is then
/// cheaper than copying everything around it.
const SLACK_BYTES: usize = 64 * 1024;

/// Lay out every array of `batch`, depth first, sharing its buffers.
pub(crate) fn lay_out(batch: &RecordBatch) -> BatchArrays {
    let mut out = BatchArrays {
        rows: batch.num_rows() as u64,
        arrays: Vec::new(),
        buffers: Vec::new(),
    };
    for column in batch.columns() {
        let data = column.to_data();
        let data = if wasteful(&data) {
            compact(&data)
        } else {
            data
        };
        push(&data, &mut out);
    }
    out
}

fn push(data: &ArrayData, out: &mut BatchArrays) {
    let nulls = data.nulls().filter(|n| n.null_count() > 0);
    // A sliced array's bitmap is cut to the bytes it covers (no copy).
    let validity = nulls.map(|n| {
        let (byte, bit) = (n.offset() / 8, n.offset() % 8);
        let bytes = (bit + n.len()).div_ceil(8);
        (n.buffer().slice_with_length(byte, bytes), bit)
    });
    out.arrays.push(ArrayLayout {
        length: data.len() as u64,
        offset: data.offset() as u64,
        null_count: nulls.map_or(0, |n| n.null_count() as u64),
        validity_offset: validity.as_ref().map_or(0, |(_, bit)| *bit as u64),
        buffers: u32::try_from(data.buffers().len()).expect("a handful of buffers"),
        children: u32::try_from(data.child_data().len()).expect("fewer than 2^32 children"),
    });
    if let Some((bitmap, _)) = validity {
        out.buffers.push(shared(&bitmap));
    }
    out.buffers.extend(data.buffers().iter().map(shared));
    for child in data.child_data() {
        push(child, out);
    }
}

/// The buffer's bytes without copying them: the `Bytes` keeps the buffer alive.
fn shared(buffer: &Buffer) -> Bytes {
    Bytes::from_owner(buffer.clone())
}

/// Bytes `push` would send for `data`.
fn sent_bytes(data: &ArrayData) -> usize {
    let nulls = data
        .nulls()
        .filter(|n| n.null_count() > 0)
        .map_or(0, |n| (n.offset() % 8 + n.len()).div_ceil(8));
    nulls
        + data.buffers().iter().map(Buffer::len).sum::<usize>()
        + data.child_data().iter().map(sent_bytes).sum::<usize>()
}

fn wasteful(data: &ArrayData) -> bool {
    match data.get_slice_memory_size() {
        Ok(needed) => sent_bytes(data) > needed.saturating_mul(2) + SLACK_BYTES,
        Err(_) => false,
    }
}

/// A copy of `data` holding only its own rows, or `data` itself when its
/// offsets would overflow (they cannot: the copy is smaller).
fn compact(data: &ArrayData) -> ArrayData {
    let mut copy = MutableArrayData::new(vec![data], false, data.len());
    match copy.try_extend(0, 0, data.len()) {
        Ok(()) => copy.freeze(),
        Err(_) => data.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, Int32Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(rows: i32) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int32, true),
            Field::new("s", DataType::Utf8, false),
        ]));
        let n: Int32Array = (0..rows).map(|i| (i % 3 != 0).then_some(i)).collect();
        let s: StringArray = (0..rows).map(|i| Some(format!("v{i}"))).collect();
        RecordBatch::try_new(schema, vec![Arc::new(n), Arc::new(s)]).unwrap()
    }

    #[test]
    fn buffers_are_shared_not_copied() {
        let b = batch(10);
        let out = lay_out(&b);
        assert_eq!(out.rows, 10);
        // n: validity + values; s: offsets + bytes (no nulls, no bitmap).
        assert_eq!(out.arrays.len(), 2);
        assert_eq!(out.buffers.len(), 4);
        assert_eq!(out.arrays[0].null_count, 4);
        assert_eq!(out.arrays[1].null_count, 0);
        let values = b.column(0).to_data().buffers()[0].as_ptr();
        assert_eq!(out.buffers[1].as_ptr(), values);
    }

    #[test]
    fn a_small_slice_of_a_large_batch_is_compacted() {
        let b = batch(1_000_000).slice(500_003, 10);
        let out = lay_out(&b);
        assert_eq!(out.rows, 10);
        let sent: usize = out.buffers.iter().map(Bytes::len).sum();
        assert!(
            sent < 1024,
            "sent {sent} bytes for 10 rows: {:?}",
            out.arrays
        );
        // The bitmap is cut to its bytes, keeping the bit the slice starts at.
        assert_eq!(out.arrays[0].validity_offset, 3);
        assert_eq!(out.buffers[0].len(), 2);
        // A slice that is most of its batch goes as it is, offsets and all.
        let most = batch(1000).slice(1, 998);
        let out = lay_out(&most);
        assert_eq!(out.arrays[0].validity_offset, 1);
        assert_eq!(out.arrays[0].length, 998);
        assert_eq!(most.column(0).null_count() as u64, out.arrays[0].null_count);
        assert_eq!(out.arrays[1].offset, 0);
        let strings = most.column(1).to_data();
        assert_eq!(out.buffers[3].len(), strings.buffers()[1].len());
    }
}
