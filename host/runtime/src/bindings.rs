//! Generated bindings for both versions of `sluice:plugin` this host serves.
//!
//! `0.2.0` (the root `wit/`) carries the implementation: one `bindgen!`
//! over its `plugin` world gives the host traits for every import and an
//! accessor per export. `0.1.0` (frozen in `wit/deps/sluice-plugin@0.1.0/`)
//! differs from it only by additions, so its imports are the 0.2.0 code
//! registered a second time under the 0.1.0 instance names (`with:` maps
//! every imported interface to the 0.2.0 module; see `plugin.rs`). Only its
//! exports get their own bindings, because their lookup names carry the
//! version; [`crate::versioned`] converts what they return.

/// `sluice:plugin@0.2.0`: what the host implements.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "sluice:plugin/plugin@0.2.0",
        imports: { default: trappable },
        with: {
            "sluice:plugin/types.batch": crate::batch::Batch,
            "sluice:plugin/types.schema": crate::batch::SchemaDecoder,
            "sluice:plugin/codec.decoder": crate::capability::codec::Decoder,
            "sluice:plugin/codec.encoder": crate::capability::codec::Encoder,
            "sluice:plugin/sql.connection": crate::capability::sql::Connection,
            "sluice:plugin/sql.rows": crate::capability::sql::Rows,
            "sluice:plugin/bigquery.upload": crate::capability::bigquery::Upload,
            "sluice:plugin/bigquery.rows": crate::capability::bigquery_rows::QueryRows,
        },
    });
}

/// `sluice:plugin@0.1.0`, frozen: imports are the 0.2.0 ones, exports its own.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "sluice:plugin/plugin@0.1.0",
        imports: { default: trappable },
        with: {
            "sluice:plugin/types@0.1.0": crate::bindings::v0_2::sluice::plugin0_2_0::types,
            "sluice:plugin/arrays@0.1.0": crate::bindings::v0_2::sluice::plugin0_2_0::arrays,
            "sluice:plugin/log@0.1.0": crate::bindings::v0_2::sluice::plugin0_2_0::log,
            "sluice:plugin/blob@0.1.0": crate::bindings::v0_2::sluice::plugin0_2_0::blob,
            "sluice:plugin/codec@0.1.0": crate::bindings::v0_2::sluice::plugin0_2_0::codec,
            "sluice:plugin/sql@0.1.0": crate::bindings::v0_2::sluice::plugin0_2_0::sql,
            "sluice:plugin/bigquery@0.1.0": crate::bindings::v0_2::sluice::plugin0_2_0::bigquery,
        },
    });

    pub(crate) use exports::sluice::plugin0_1_0::{filter, sink, source};
}

pub(crate) use v0_2::exports::sluice::plugin0_2_0::{filter, sink, source};
pub(crate) use v0_2::sluice::plugin0_2_0::{bigquery, blob, codec, log, sql, types};

/// The host's [`ErrorKind`](crate::ErrorKind) for a WIT error kind.
impl From<types::ErrorKind> for crate::ErrorKind {
    fn from(kind: types::ErrorKind) -> Self {
        match kind {
            types::ErrorKind::Config => crate::ErrorKind::Config,
            types::ErrorKind::Auth => crate::ErrorKind::Auth,
            types::ErrorKind::Transient => crate::ErrorKind::Transient,
            types::ErrorKind::Data => crate::ErrorKind::Data,
            types::ErrorKind::Internal => crate::ErrorKind::Internal,
        }
    }
}

/// A WIT error for the guest, built by host capabilities.
pub(crate) fn guest_error(kind: types::ErrorKind, message: impl Into<String>) -> types::Error {
    types::Error {
        kind,
        message: message.into(),
    }
}
