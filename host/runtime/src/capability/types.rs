//! The host side of the `batch` resource.

use wasmtime::component::Resource;

use crate::batch::{Batch, SchemaDecoder, encode_messages, encode_schema};
use crate::bindings::types::{Error as GuestError, Host, HostBatch, HostSchema};
use crate::capability::{HostState, data_error};

impl Host for HostState {}

impl HostSchema for HostState {
    fn from_ipc(
        &mut self,
        ipc: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<SchemaDecoder>, GuestError>> {
        match SchemaDecoder::from_ipc(ipc) {
            Ok(schema) => Ok(Ok(self.table.push(schema)?)),
            Err(message) => Ok(Err(data_error(message))),
        }
    }

    fn to_ipc(&mut self, this: Resource<SchemaDecoder>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&this)?.ipc().to_vec())
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
        match self.table.get_mut(&schema)?.decode(messages) {
            Ok(batch) => Ok(Ok(self.table.push(Batch(batch))?)),
            Err(message) => Ok(Err(data_error(message))),
        }
    }

    fn from_json_lines(
        &mut self,
        schema: Resource<SchemaDecoder>,
        text: String,
    ) -> wasmtime::Result<Result<Resource<Batch>, GuestError>> {
        let schema = self.table.get(&schema)?.schema().clone();
        match sluice_codec::json_lines_to_batch(schema, &text) {
            Ok(batch) => Ok(Ok(self.table.push(Batch(batch))?)),
            Err(e) => Ok(Err(e.into())),
        }
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
        let batch = &self.table.get(&this)?.0;
        let rows = batch.num_rows() as u64;
        let offset = offset.min(rows);
        let len = len.min(rows - offset);
        let sliced = batch.slice(offset as usize, len as usize);
        Ok(self.table.push(Batch(sliced))?)
    }

    fn schema(&mut self, this: Resource<Batch>) -> wasmtime::Result<Vec<u8>> {
        Ok(encode_schema(&self.table.get(&this)?.0.schema()))
    }

    fn to_ipc(&mut self, this: Resource<Batch>) -> wasmtime::Result<Vec<u8>> {
        Ok(encode_messages(&self.table.get(&this)?.0))
    }

    fn drop(&mut self, this: Resource<Batch>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
