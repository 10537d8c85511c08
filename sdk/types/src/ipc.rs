//! A batch as schema-less Arrow IPC messages: what crosses between the host
//! and a plugin when a batch is not lent array by array. Both sides encode
//! with this one function, so both number dictionaries the same way.

use arrow_array::RecordBatch;
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions, write_message};
use arrow_schema::ArrowError;

/// Encode `batch` as its dictionary batches, then the record batch, without
/// the schema (each side knows it already).
///
/// # Errors
/// When Arrow cannot encode the batch (a type IPC does not carry).
pub fn encode_batch_messages(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let options = IpcWriteOptions::default();
    let mut tracker = DictionaryTracker::new(false);
    let generator = IpcDataGenerator::default();
    // Encoding the schema numbers its dictionaries, as a decoder primed with
    // the schema's IPC numbers them.
    generator.schema_to_bytes_with_dictionary_tracker(&batch.schema(), &mut tracker, &options);
    let (dictionaries, message) =
        generator.encode(batch, &mut tracker, &options, &mut Default::default())?;
    let mut out = Vec::with_capacity(batch.get_array_memory_size() + 512);
    for encoded in dictionaries.into_iter().chain(std::iter::once(message)) {
        write_message(&mut out, encoded, &options)?;
    }
    Ok(out)
}
