//! On-disk cache of precompiled components.
//!
//! Keyed by the component's sha256 and the engine's compatibility hash, so a
//! second run skips Cranelift entirely and a new wasmtime or changed engine
//! settings never load stale code.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of `<sha256>-<engine>.cwasm` files.
pub(crate) struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
}

impl ComponentCache {
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ComponentCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    fn entry(&self, wasm: &[u8]) -> PathBuf {
        let digest = Sha256::digest(wasm);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}-{}.cwasm", self.engine_key))
    }

    /// The cached component for these bytes, if there is a usable one.
    pub(crate) fn get(&self, engine: &Engine, wasm: &[u8]) -> Option<Component> {
        let path = self.entry(wasm);
        if !path.is_file() {
            return None;
        }
        // The file name says it was made by this engine from these bytes; a
        // file that fails to load anyway (truncated, say) is recompiled.
        match load_precompiled(engine, &path) {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring unusable cache entry: {e}");
                None
            }
        }
    }

    /// Store a compiled component; failures only cost a recompile next time.
    pub(crate) fn put(&self, wasm: &[u8], component: &Component) {
        let path = self.entry(wasm);
        let result = (|| -> Result<(), String> {
            std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
            let bytes = component.serialize().map_err(|e| e.to_string())?;
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
        })();
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), "cannot cache compiled component: {e}");
        }
    }
}

#[allow(unsafe_code)]
fn load_precompiled(engine: &Engine, path: &Path) -> Result<Component, String> {
    // SAFETY: `deserialize_file` trusts its input. Only this cache writes
    // these files (atomically, by rename), named by the source's digest and
    // this engine's compatibility hash; wasmtime still checks the header.
    unsafe { Component::deserialize_file(engine, path) }.map_err(|e| e.to_string())
}
