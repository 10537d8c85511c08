//! `blob`: object storage scoped to the granted root (a local directory or
//! an S3 prefix).
//!
//! The stores themselves are `sluice_codec::LocalStore` and `sluice_s3`;
//! this module checks the grant (present, writable), keeps the objects a
//! plugin staged until it publishes them, and speaks WIT.

use crate::bindings::blob::{Host, ObjectInfo};
use crate::bindings::types::Error as GuestError;
use crate::capability::{BlobGrant, HostState, config_error};

impl From<sluice_codec::ObjectInfo> for ObjectInfo {
    fn from(o: sluice_codec::ObjectInfo) -> Self {
        ObjectInfo {
            path: o.path,
            size: o.size,
            modified_ms: o.modified_ms,
        }
    }
}

impl HostState {
    pub(crate) fn writable_grant(&self, capability: &str) -> Result<&BlobGrant, GuestError> {
        let grant = self.blob_grant(capability)?;
        if grant.writable {
            Ok(grant)
        } else {
            Err(config_error(format!(
                "plugin {} has a read-only blob grant ({})",
                self.plugin,
                grant.store.location()
            )))
        }
    }
}

impl Host for HostState {
    fn list(
        &mut self,
        pattern: String,
        start_after: Option<String>,
    ) -> wasmtime::Result<Result<Vec<ObjectInfo>, GuestError>> {
        self.guard("blob.list", |state| {
            let grant = match state.blob_grant("blob") {
                Ok(g) => g,
                Err(e) => return Ok(Err(e)),
            };
            Ok(grant
                .store
                .list(&pattern, start_after.as_deref())
                .map(|objects| objects.into_iter().map(ObjectInfo::from).collect())
                .map_err(GuestError::from))
        })
    }

    fn stat(&mut self, path: String) -> wasmtime::Result<Result<Option<ObjectInfo>, GuestError>> {
        self.guard("blob.stat", |state| {
            Ok((|| {
                Ok(state
                    .blob_grant("blob")?
                    .store
                    .stat(&path)?
                    .map(ObjectInfo::from))
            })())
        })
    }

    fn read(
        &mut self,
        path: String,
        offset: u64,
        len: u64,
    ) -> wasmtime::Result<Result<Vec<u8>, GuestError>> {
        self.guard("blob.read", |state| {
            Ok((|| {
                Ok(state.blob_grant("blob")?.store.read(&path, offset, len)?)
            })())
        })
    }

    fn write(&mut self, path: String, data: Vec<u8>) -> wasmtime::Result<Result<(), GuestError>> {
        self.guard("blob.write", |state| {
            Ok((|| {
                Ok(state.writable_grant("blob")?.store.write(&path, &data)?)
            })())
        })
    }

    fn rename(&mut self, from: String, to: String) -> wasmtime::Result<Result<(), GuestError>> {
        self.guard("blob.rename", |state| {
            Ok((|| {
                Ok(state.writable_grant("blob")?.store.rename(&from, &to)?)
            })())
        })
    }

    fn delete(&mut self, path: String) -> wasmtime::Result<Result<(), GuestError>> {
        self.guard("blob.delete", |state| {
            Ok((|| {
                Ok(state.writable_grant("blob")?.store.delete(&path)?)
            })())
        })
    }

    fn publish(&mut self, path: String) -> wasmtime::Result<Result<(), GuestError>> {
        self.guard("blob.publish", |state| {
            Ok((|| {
                state.writable_grant("blob")?;
                let staged = state.staged.remove(&path).ok_or_else(|| {
                    config_error(format!(
                        "plugin {}: nothing staged at {path}: finish an encoder created with `staged: true` first",
                        state.plugin
                    ))
                })?;
                if state.deferring {
                    // Published once the commit's state is saved.
                    state.deferred.push((path.clone(), staged));
                    return Ok(());
                }
                let mut staged = staged;
                let published = staged.object.publish();
                drop(staged.object);
                state.journal_settled(staged.token.as_deref());
                Ok(published?)
            })())
        })
    }

    fn discard(&mut self, path: String) -> wasmtime::Result<Result<(), GuestError>> {
        // Dropping a staged object discards it.
        self.guard("blob.discard", |state| {
            if let Some(staged) = state.staged.remove(&path) {
                drop(staged.object);
                state.journal_settled(staged.token.as_deref());
            }
            Ok(Ok(()))
        })
    }
}
