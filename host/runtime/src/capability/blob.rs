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

/// Run `f`, turning its error into what the guest sees.
fn guest<T>(f: impl FnOnce() -> Result<T, GuestError>) -> wasmtime::Result<Result<T, GuestError>> {
    Ok(f())
}

impl Host for HostState {
    fn list(
        &mut self,
        pattern: String,
        start_after: Option<String>,
    ) -> wasmtime::Result<Result<Vec<ObjectInfo>, GuestError>> {
        guest(|| {
            let grant = self.blob_grant("blob")?;
            Ok(grant
                .store
                .list(&pattern, start_after.as_deref())?
                .into_iter()
                .map(ObjectInfo::from)
                .collect())
        })
    }

    fn stat(&mut self, path: String) -> wasmtime::Result<Result<Option<ObjectInfo>, GuestError>> {
        guest(|| {
            Ok(self
                .blob_grant("blob")?
                .store
                .stat(&path)?
                .map(ObjectInfo::from))
        })
    }

    fn read(
        &mut self,
        path: String,
        offset: u64,
        len: u64,
    ) -> wasmtime::Result<Result<Vec<u8>, GuestError>> {
        guest(|| Ok(self.blob_grant("blob")?.store.read(&path, offset, len)?))
    }

    fn write(&mut self, path: String, data: Vec<u8>) -> wasmtime::Result<Result<(), GuestError>> {
        guest(|| Ok(self.writable_grant("blob")?.store.write(&path, &data)?))
    }

    fn rename(&mut self, from: String, to: String) -> wasmtime::Result<Result<(), GuestError>> {
        guest(|| Ok(self.writable_grant("blob")?.store.rename(&from, &to)?))
    }

    fn delete(&mut self, path: String) -> wasmtime::Result<Result<(), GuestError>> {
        guest(|| Ok(self.writable_grant("blob")?.store.delete(&path)?))
    }

    fn publish(&mut self, path: String) -> wasmtime::Result<Result<(), GuestError>> {
        guest(|| {
            self.writable_grant("blob")?;
            let staged = self.staged.remove(&path).ok_or_else(|| {
                config_error(format!(
                    "plugin {}: nothing staged at {path}: finish an encoder created with `staged: true` first",
                    self.plugin
                ))
            })?;
            Ok(staged.publish()?)
        })
    }

    fn discard(&mut self, path: String) -> wasmtime::Result<Result<(), GuestError>> {
        // Dropping a staged object discards it.
        self.staged.remove(&path);
        Ok(Ok(()))
    }
}
