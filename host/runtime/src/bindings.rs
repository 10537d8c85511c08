//! Generated bindings for `sluice:plugin@0.1.0`.
//!
//! One `bindgen!` over the `plugin` world gives the host traits for every
//! import and an accessor per export; a component that exports only one kind
//! (the `source`, `filter` or `sink` world) is loaded through that kind's
//! accessor alone. When 0.2 comes, it gets its own module beside this one.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "plugin",
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

pub(crate) use exports::sluice::plugin::{filter, sink, source};
pub(crate) use sluice::plugin::{bigquery, blob, codec, log, sql, types};

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
