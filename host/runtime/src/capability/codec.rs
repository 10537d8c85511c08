//! `codec`: the host's native Arrow readers and writers, behind WIT.
//!
//! The readers and writers themselves live in `sluice-codec` (shared with
//! the SDK's native test harness); this module hands them to plugins as
//! `decoder` and `encoder` resources scoped to the blob grant.

use serde::Deserialize;
use wasmtime::component::Resource;

use crate::batch::{Batch, decode_schema, encode_schema};
use crate::bindings::codec::{Host, HostDecoder, HostEncoder};
use crate::bindings::types::Error as GuestError;
use crate::capability::{HostState, config_error, data_error};

pub use sluice_codec::{DecodeOptions, Decoder, EncodeOptions, Encoder};

fn parse_options<T: for<'de> Deserialize<'de>>(what: &str, json: &str) -> Result<T, GuestError> {
    serde_json::from_str(json).map_err(|e| config_error(format!("{what} options: {e}")))
}

impl Host for HostState {
    fn inspect(
        &mut self,
        path: String,
        format: String,
    ) -> wasmtime::Result<Result<crate::bindings::codec::FileStats, GuestError>> {
        self.guard("codec.inspect", |state| {
            Ok((|| -> Result<_, GuestError> {
                let grant = state.blob_grant("codec")?;
                let format: sluice_codec::Format =
                    serde_json::from_value(serde_json::Value::String(format.clone()))
                        .map_err(|_| config_error(format!("unknown format `{format}`")))?;
                let stats = sluice_codec::inspect(&grant.store, &path, format)?;
                Ok(crate::bindings::codec::FileStats {
                    rows: stats.rows,
                    row_groups: stats.row_groups,
                })
            })())
        })
    }
}

impl HostDecoder for HostState {
    fn open(
        &mut self,
        path: String,
        options: String,
    ) -> wasmtime::Result<Result<Resource<Decoder>, GuestError>> {
        self.guard("codec.decoder.open", |state| {
            let opened = (|| {
                let grant = state.blob_grant("codec")?;
                let options: DecodeOptions = parse_options("decoder", &options)?;
                Decoder::open(
                    &grant.store,
                    &path,
                    &options,
                    state.bytes_read.clone(),
                    state.rejects.clone(),
                )
                .map_err(GuestError::from)
            })();
            match opened {
                Ok(decoder) => Ok(Ok(state.table.push(decoder)?)),
                Err(e) => Ok(Err(e)),
            }
        })
    }

    fn schema(&mut self, this: Resource<Decoder>) -> wasmtime::Result<Vec<u8>> {
        self.guard_trap("codec.decoder.schema", |state| {
            Ok(encode_schema(state.table.get(&this)?.schema()))
        })
    }

    fn next(
        &mut self,
        this: Resource<Decoder>,
    ) -> wasmtime::Result<Result<Option<Resource<Batch>>, GuestError>> {
        self.guard("codec.decoder.next", |state| {
            let next = state.table.get_mut(&this)?.next_batch();
            match next {
                Ok(Some(batch)) => Ok(Ok(Some(state.table.push(Batch(batch))?))),
                Ok(None) => Ok(Ok(None)),
                Err(e) => Ok(Err(e.into())),
            }
        })
    }

    fn rejected(&mut self, this: Resource<Decoder>) -> wasmtime::Result<u64> {
        crate::call_log::host_function("codec.decoder.rejected");
        Ok(self.table.get(&this)?.rejected())
    }

    fn drop(&mut self, this: Resource<Decoder>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl HostEncoder for HostState {
    fn create(
        &mut self,
        path: String,
        schema: Vec<u8>,
        options: String,
    ) -> wasmtime::Result<Result<Resource<Encoder>, GuestError>> {
        self.guard("codec.encoder.create", |state| {
            let mut recorded = None;
            let created = (|| {
                let grant = state.writable_grant("codec")?;
                let options: EncodeOptions = parse_options("encoder", &options)?;
                let schema = decode_schema(&schema).map_err(data_error)?;
                // The journal hears of the object before it exists.
                let mut record = |token: &str| {
                    state.record_staging(token)?;
                    recorded = Some(token.to_string());
                    Ok(())
                };
                Encoder::create_recorded(grant.store.as_ref(), &path, schema, &options, &mut record)
                    .map_err(GuestError::from)
            })();
            // Settled when it is published, discarded, or the instance ends;
            // at once when creating failed after it was recorded.
            if let Some(token) = recorded {
                state.journaled.insert(token.clone());
                if created.is_err() {
                    state.journal_settled(Some(&token));
                }
            }
            match created {
                Ok(encoder) => Ok(Ok(state.table.push(encoder)?)),
                Err(e) => Ok(Err(e)),
            }
        })
    }

    fn write(
        &mut self,
        this: Resource<Encoder>,
        batch: Resource<Batch>,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        self.guard("codec.encoder.write", |state| {
            let batch = state.table.get(&batch)?.0.clone();
            Ok(state
                .table
                .get_mut(&this)?
                .write(&batch)
                .map_err(GuestError::from))
        })
    }

    fn bytes_written(&mut self, this: Resource<Encoder>) -> wasmtime::Result<u64> {
        crate::call_log::host_function("codec.encoder.bytes-written");
        Ok(self.table.get(&this)?.bytes_written())
    }

    fn finish(&mut self, this: Resource<Encoder>) -> wasmtime::Result<Result<u64, GuestError>> {
        self.guard("codec.encoder.finish", |state| {
            let encoder = state.table.get_mut(&this)?;
            let path = encoder.path().to_string();
            let token = encoder.staging_token().map(str::to_string);
            Ok(match encoder.finish() {
                Ok(finished) => {
                    match finished.staged {
                        // A second staged write of one path replaces the
                        // first (which discards itself).
                        Some(object) => {
                            let staged = crate::capability::publish::StagedObject { object, token };
                            if let Some(replaced) = state.staged.insert(path, staged) {
                                drop(replaced.object);
                                state.journal_settled(replaced.token.as_deref());
                            }
                        }
                        None => state.journal_settled(token.as_deref()),
                    }
                    Ok(finished.bytes)
                }
                Err(e) => Err(e.into()),
            })
        })
    }

    fn drop(&mut self, this: Resource<Encoder>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
