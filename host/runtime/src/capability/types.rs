//! The host side of the `batch` and `schema` resources.
//!
//! Batches a plugin builds (from IPC or JSON Lines) are checked against the
//! batch cap before they exist in the host; every body runs under
//! [`HostState::guard`], so a panic in a decoder fails the call instead of
//! the process.

use wasmtime::component::Resource;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::datatypes::{Field, Schema};

use crate::batch::{Batch, SchemaDecoder, encode_messages, encode_schema};
use crate::bindings::types::{
    Column as GuestColumn, Error as GuestError, Field as GuestField, Host, HostBatch, HostSchema,
};
use crate::capability::plain_columns::{from_guest, to_guest};
use crate::capability::{HostState, config_error, data_error};
use crate::limits::{setting, within};

impl Host for HostState {}

impl HostState {
    /// Refuse bytes a plugin sends to be decoded when they exceed the cap
    /// on one batch.
    fn batch_input(&self, what: &str, bytes: usize) -> Result<(), GuestError> {
        within(what, bytes, self.caps.batch_bytes, setting::BATCH).map_err(data_error)
    }

    /// A batch resource of `schema` from JSON Lines `text`, within the
    /// batch cap: what `from-json-lines` and `from-json-bytes` share.
    fn push_json_batch(
        &mut self,
        schema: &Resource<SchemaDecoder>,
        text: &str,
    ) -> wasmtime::Result<Result<Resource<Batch>, GuestError>> {
        if let Err(e) = self.batch_input("JSON Lines text", text.len()) {
            return Ok(Err(e));
        }
        let schema = self.table.get(schema)?.schema().clone();
        match sluice_codec::json_lines_to_batch(schema, text) {
            Ok(batch) => Ok(Ok(self.table.push(Batch(batch))?)),
            Err(e) => Ok(Err(e.into())),
        }
    }

    /// A schema resource for IPC-encoded `ipc`, within the schema cap.
    fn push_schema(
        &mut self,
        ipc: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<SchemaDecoder>, GuestError>> {
        if let Err(e) = within(
            "a schema",
            ipc.len(),
            self.caps.schema_bytes,
            setting::SCHEMA,
        ) {
            return Ok(Err(data_error(e)));
        }
        match SchemaDecoder::from_ipc(ipc) {
            Ok(schema) => Ok(Ok(self.table.push(schema)?)),
            Err(message) => Ok(Err(data_error(message))),
        }
    }
}

impl HostSchema for HostState {
    fn from_ipc(
        &mut self,
        ipc: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<SchemaDecoder>, GuestError>> {
        self.guard("schema.from-ipc", |state| state.push_schema(ipc))
    }

    fn to_ipc(&mut self, this: Resource<SchemaDecoder>) -> wasmtime::Result<Vec<u8>> {
        self.guard_trap("schema.to-ipc", |state| {
            Ok(state.table.get(&this)?.ipc().to_vec())
        })
    }

    fn from_fields(
        &mut self,
        fields: Vec<GuestField>,
    ) -> wasmtime::Result<Result<Resource<SchemaDecoder>, GuestError>> {
        self.guard("schema.from-fields", |state| {
            let schema = match schema_of(fields) {
                Ok(schema) => schema,
                Err(message) => return Ok(Err(config_error(message))),
            };
            state.push_schema(encode_schema(&schema))
        })
    }

    fn fields(&mut self, this: Resource<SchemaDecoder>) -> wasmtime::Result<Vec<GuestField>> {
        self.guard_trap("schema.fields", |state| {
            let schema = state.table.get(&this)?.schema();
            Ok(schema
                .fields()
                .iter()
                .map(|f| GuestField {
                    name: f.name().clone(),
                    type_: sluice_types::type_name(f.data_type()),
                    nullable: f.is_nullable(),
                    metadata: f
                        .metadata()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                })
                .collect())
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
            state.push_json_batch(&schema, &text)
        })
    }

    fn from_json_bytes(
        &mut self,
        schema: Resource<SchemaDecoder>,
        text: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<Batch>, GuestError>> {
        self.guard("batch.from-json-bytes", |state| {
            match std::str::from_utf8(&text) {
                Ok(text) => state.push_json_batch(&schema, text),
                Err(e) => Ok(Err(data_error(format!(
                    "JSON Lines: not UTF-8 at byte {}",
                    e.valid_up_to()
                )))),
            }
        })
    }

    fn from_columns(
        &mut self,
        schema: Resource<SchemaDecoder>,
        columns: Vec<GuestColumn>,
    ) -> wasmtime::Result<Result<Resource<Batch>, GuestError>> {
        self.guard("batch.from-columns", |state| {
            let columns: Vec<_> = columns.into_iter().map(from_guest).collect();
            let bytes = columns.iter().map(|c| c.byte_len()).sum();
            if let Err(e) = state.batch_input("columns", bytes) {
                return Ok(Err(e));
            }
            let schema = state.table.get(&schema)?.schema().clone();
            match sluice_codec::columns_to_batch(schema, columns) {
                Ok(batch) => Ok(Ok(state.table.push(Batch(batch))?)),
                Err(e) => Ok(Err(e.into())),
            }
        })
    }

    fn to_columns(
        &mut self,
        this: Resource<Batch>,
        packed: bool,
    ) -> wasmtime::Result<Result<Vec<GuestColumn>, GuestError>> {
        self.guard(
            "batch.to-columns",
            |state| match sluice_codec::batch_to_columns(&state.table.get(&this)?.0, packed) {
                Ok(columns) => Ok(Ok(columns.into_iter().map(to_guest).collect())),
                Err(e) => Ok(Err(e.into())),
            },
        )
    }

    fn to_json_bytes(
        &mut self,
        this: Resource<Batch>,
    ) -> wasmtime::Result<Result<Vec<u8>, GuestError>> {
        self.guard(
            "batch.to-json-bytes",
            |state| match sluice_codec::batch_to_json_lines(&state.table.get(&this)?.0) {
                Ok(text) => Ok(Ok(text.into_bytes())),
                Err(e) => Ok(Err(e.into())),
            },
        )
    }

    fn to_json_lines(
        &mut self,
        this: Resource<Batch>,
    ) -> wasmtime::Result<Result<String, GuestError>> {
        self.guard(
            "batch.to-json-lines",
            |state| match sluice_codec::batch_to_json_lines(&state.table.get(&this)?.0) {
                Ok(text) => Ok(Ok(text)),
                Err(e) => Ok(Err(e.into())),
            },
        )
    }

    fn num_rows(&mut self, this: Resource<Batch>) -> wasmtime::Result<u64> {
        crate::call_log::host_function("batch.num-rows");
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

/// The Arrow schema `schema.from-fields` describes: every type parsed as
/// `columns:` parses it, names unique and not empty.
fn schema_of(fields: Vec<GuestField>) -> Result<Schema, String> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(fields.len());
    for (i, field) in fields.into_iter().enumerate() {
        if field.name.is_empty() {
            return Err(format!("field {} has no name", i + 1));
        }
        if !seen.insert(field.name.clone()) {
            return Err(format!("field `{}` appears twice", field.name));
        }
        let data_type = sluice_types::parse_type(&field.type_)
            .map_err(|e| format!("field `{}`: {e}", field.name))?;
        let metadata: HashMap<String, String> = field.metadata.into_iter().collect();
        out.push(Arc::new(
            Field::new(field.name, data_type, field.nullable).with_metadata(metadata),
        ));
    }
    Ok(Schema::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, type_: &str) -> GuestField {
        GuestField {
            name: name.into(),
            type_: type_.into(),
            nullable: true,
            metadata: vec![("doc".into(), "x".into())],
        }
    }

    #[test]
    fn fields_name_types_as_columns_does() {
        let schema = schema_of(vec![
            field("id", "int64"),
            field("amount", "decimal(15,2)"),
            field("at", "timestamptz"),
        ])
        .unwrap();
        assert_eq!(schema.field(1).data_type().to_string(), "Decimal128(15, 2)");
        assert_eq!(schema.field(0).metadata()["doc"], "x");
        let err = schema_of(vec![field("id", "int64"), field("id", "string")]).unwrap_err();
        assert!(err.contains("`id` appears twice"), "{err}");
        let err = schema_of(vec![field("x", "nonsense")]).unwrap_err();
        assert!(err.contains("field `x`: unknown type `nonsense`"), "{err}");
        assert!(
            schema_of(vec![field("", "int64")])
                .unwrap_err()
                .contains("field 1")
        );
    }
}
