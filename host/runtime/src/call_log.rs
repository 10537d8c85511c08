//! Which contract functions this process called, when `SLUICE_WIT_CALL_LOG`
//! names a directory: the test command sets it, then checks that every
//! function in `wit/` was called through the host by some test, so a
//! function added without a caller fails the run.
//!
//! Names are the contract's own, `interface.resource.function`
//! (`types.batch.to-json-lines`, `source.reader.next`). Each is appended
//! once per process to `DIR/<pid>.log`; a process killed mid-test keeps
//! what it wrote.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// The variable naming the directory.
pub const CALL_LOG_VAR: &str = "SLUICE_WIT_CALL_LOG";

struct CallLog {
    seen: HashSet<String>,
    file: std::fs::File,
}

fn log() -> Option<&'static Mutex<CallLog>> {
    static LOG: OnceLock<Option<Mutex<CallLog>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let dir = std::env::var_os(CALL_LOG_VAR)?;
        std::fs::create_dir_all(&dir).ok()?;
        let path = std::path::Path::new(&dir).join(format!("{}.log", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()?;
        Some(Mutex::new(CallLog {
            seen: HashSet::new(),
            file,
        }))
    })
    .as_ref()
}

/// Note a call of host function `function` as the guards name it
/// (`batch.slice`, `sql.connection.open`).
pub(crate) fn host_function(function: &str) {
    if let Some(log) = log() {
        // The `types` interface's resources are named without it.
        let name = if function.starts_with("schema.") || function.starts_with("batch.") {
            format!("types.{function}")
        } else {
            function.to_string()
        };
        note(log, name);
    }
}

/// Note a call into a plugin's export `call` (`reader.next`) of `kind`.
pub(crate) fn export(kind: &str, call: &str) {
    if let Some(log) = log() {
        note(log, format!("{kind}.{call}"));
    }
}

fn note(log: &Mutex<CallLog>, name: String) {
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    if log.seen.insert(name.clone()) {
        let _ = writeln!(log.file, "{name}");
    }
}
