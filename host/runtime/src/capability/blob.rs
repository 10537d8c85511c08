//! `blob`: object storage scoped to a granted local directory.
//!
//! The directory store itself is `sluice_codec::local`; this module checks
//! the grant (present, writable) and speaks WIT.

use sluice_codec::local;

use crate::bindings::blob::{Host, ObjectInfo};
use crate::bindings::types::Error as GuestError;
use crate::capability::{BlobGrant, HostState, config_error};

impl From<local::ObjectInfo> for ObjectInfo {
    fn from(o: local::ObjectInfo) -> Self {
        ObjectInfo {
            path: o.path,
            size: o.size,
            modified_ms: o.modified_ms,
        }
    }
}

impl HostState {
    fn writable_grant(&self) -> Result<&BlobGrant, GuestError> {
        let grant = self.blob_grant("blob")?;
        if grant.writable {
            Ok(grant)
        } else {
            Err(config_error(format!(
                "plugin {} has a read-only blob grant",
                self.plugin
            )))
        }
    }
}

impl Host for HostState {
    fn list(&mut self, pattern: String) -> wasmtime::Result<Result<Vec<ObjectInfo>, GuestError>> {
        Ok((|| {
            let grant = self.blob_grant("blob")?;
            Ok(local::list(&grant.root, &pattern)?
                .into_iter()
                .map(ObjectInfo::from)
                .collect())
        })())
    }

    fn stat(&mut self, path: String) -> wasmtime::Result<Result<Option<ObjectInfo>, GuestError>> {
        Ok((|| {
            let grant = self.blob_grant("blob")?;
            Ok(local::stat(&grant.root, &path)?.map(ObjectInfo::from))
        })())
    }

    fn read(
        &mut self,
        path: String,
        offset: u64,
        len: u64,
    ) -> wasmtime::Result<Result<Vec<u8>, GuestError>> {
        Ok((|| {
            let grant = self.blob_grant("blob")?;
            Ok(local::read(&grant.root, &path, offset, len)?)
        })())
    }

    fn write(&mut self, path: String, data: Vec<u8>) -> wasmtime::Result<Result<(), GuestError>> {
        Ok((|| {
            Ok(local::write(&self.writable_grant()?.root, &path, &data)?)
        })())
    }

    fn rename(&mut self, from: String, to: String) -> wasmtime::Result<Result<(), GuestError>> {
        Ok((|| {
            Ok(local::rename(&self.writable_grant()?.root, &from, &to)?)
        })())
    }

    fn delete(&mut self, path: String) -> wasmtime::Result<Result<(), GuestError>> {
        Ok((|| Ok(local::delete(&self.writable_grant()?.root, &path)?))())
    }
}
