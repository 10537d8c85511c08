//! The host side of the `batch` and `schema` resources.
//!
//! Batches a plugin builds (from IPC or JSON Lines) are checked against the
//! batch cap before they exist in the host; every body runs under
//! [`HostState::guard`], so a panic in a decoder fails the call instead of
//! the process.

use wasmtime::component::Resource;

use crate::batch::{Batch, SchemaDecoder, encode_messages, encode_schema};
use crate::bindings::types::{Error as GuestError, Host, HostBatch, HostSchema};
use crate::capability::{HostState, data_error};
use crate::limits::{setting, within};

impl Host for HostState {}

impl HostState {
    /// Refuse bytes a plugin sends to be decoded when they exceed the cap
    /// on one batch.
    fn batch_input(&self, what: &str, bytes: usize) -> Result<(), GuestError> {
        within(what, bytes, self.caps.batch_bytes, setting::BATCH).map_err(data_error)
    }
}

impl HostSchema for HostState {
    fn from_ipc(
        &mut self,
        ipc: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<SchemaDecoder>, GuestError>> {
        self.guard("schema.from-ipc", |state| {
            if let Err(e) = within(
                "a schema",
                ipc.len(),
                state.caps.schema_bytes,
                setting::SCHEMA,
            ) {
                return Ok(Err(data_error(e)));
            }
            match SchemaDecoder::from_ipc(ipc) {
                Ok(schema) => Ok(Ok(state.table.push(schema)?)),
                Err(message) => Ok(Err(data_error(message))),
            }
        })
    }

    fn to_ipc(&mut self, this: Resource<SchemaDecoder>) -> wasmtime::Result<Vec<u8>> {
        self.guard_trap("schema.to-ipc", |state| {
            Ok(state.table.get(&this)?.ipc().to_vec())
        })
    }

    fn drop(&mut self, this: Resource<SchemaDecoder>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl HostBatch for HostState {
    fn from_ipc(
        &mut self,
        schema: Resource<SchemaDecoder>,
        messages: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<Batch>, GuestError>> {
        self.guard("batch.from-ipc", |state| {
            if let Err(e) = state.batch_input("a batch", messages.len()) {
                return Ok(Err(e));
            }
            match state.table.get_mut(&schema)?.decode(messages) {
                Ok(batch) => Ok(Ok(state.table.push(Batch(batch))?)),
                Err(message) => Ok(Err(data_error(message))),
            }
        })
    }

    fn from_json_lines(
        &mut self,
        schema: Resource<SchemaDecoder>,
        text: String,
    ) -> wasmtime::Result<Result<Resource<Batch>, GuestError>> {
        self.guard("batch.from-json-lines", |state| {
            if let Err(e) = state.batch_input("JSON Lines text", text.len()) {
                return Ok(Err(e));
            }
            let schema = state.table.get(&schema)?.schema().clone();
            match sluice_codec::json_lines_to_batch(schema, &text) {
                Ok(batch) => Ok(Ok(state.table.push(Batch(batch))?)),
                Err(e) => Ok(Err(e.into())),
            }
        })
    }

    fn num_rows(&mut self, this: Resource<Batch>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&this)?.0.num_rows() as u64)
    }

    fn slice(
        &mut self,
        this: Resource<Batch>,
        offset: u64,
        len: u64,
    ) -> wasmtime::Result<Resource<Batch>> {
        self.guard_trap("batch.slice", |state| {
            let batch = &state.table.get(&this)?.0;
            let rows = batch.num_rows() as u64;
            let offset = offset.min(rows);
            let len = len.min(rows - offset);
            let sliced = batch.slice(offset as usize, len as usize);
            Ok(state.table.push(Batch(sliced))?)
        })
    }

    fn schema(&mut self, this: Resource<Batch>) -> wasmtime::Result<Vec<u8>> {
        self.guard_trap("batch.schema", |state| {
            Ok(encode_schema(&state.table.get(&this)?.0.schema()))
        })
    }

    fn to_ipc(&mut self, this: Resource<Batch>) -> wasmtime::Result<Vec<u8>> {
        self.guard_trap("batch.to-ipc", |state| {
            Ok(encode_messages(&state.table.get(&this)?.0))
        })
    }

    fn drop(&mut self, this: Resource<Batch>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
