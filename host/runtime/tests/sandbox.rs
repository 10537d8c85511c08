//! A plugin that loops, bombs memory, traps or returns garbage fails its
//! call with a clear error, and the same runtime goes on serving others.
//!
//! Needs the test plugins: `cargo xtask test` builds them and sets
//! `SLUICE_TEST_PLUGIN_DIR`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_runtime::{
    Error, ErrorKind, Grants, Limits, Partition, ReaderEvent, Runtime, RuntimeConfig,
};

fn misbehave() -> PathBuf {
    let dir = std::env::var_os("SLUICE_TEST_PLUGIN_DIR")
        .expect("SLUICE_TEST_PLUGIN_DIR is not set: run the tests with `cargo xtask test`");
    let path = PathBuf::from(dir).join("source-misbehave.wasm");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask build-plugins`",
        path.display()
    );
    path
}

fn partition() -> Partition {
    Partition {
        stream: "misbehave".into(),
        id: "0".into(),
        spec: String::new(),
    }
}

/// Run the misbehaving reader in `mode` to its first failure (or the end).
fn read(runtime: &Runtime, mode: &str, limits: Limits) -> Result<usize, Error> {
    let plugin = runtime.load(&misbehave()).unwrap();
    let config = format!(r#"{{"mode":"{mode}"}}"#);
    let mut reader = plugin
        .source(Arc::new(Grants::default()), limits)?
        .into_reader(&config, &partition(), None)?;
    let mut batches = 0;
    while let Some(event) = reader.next_event()? {
        if let ReaderEvent::Batch(_) = event {
            batches += 1;
        }
    }
    Ok(batches)
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig { cache_dir: None }).unwrap()
}

fn assert_still_serves(runtime: &Runtime) {
    assert_eq!(read(runtime, "ok", Limits::default()).unwrap(), 1);
}

#[test]
fn infinite_loop_stops_at_the_deadline() {
    let runtime = runtime();
    let limits = Limits {
        call_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let started = Instant::now();
    let err = read(&runtime, "loop", limits).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("misbehave") && msg.contains("reader.next") && msg.contains("timed out"),
        "{msg}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_still_serves(&runtime);
}

#[test]
fn memory_bomb_stops_at_the_cap() {
    let runtime = runtime();
    let limits = Limits {
        memory_bytes: 64 << 20,
        ..Limits::default()
    };
    let err = read(&runtime, "oom", limits).unwrap_err();
    assert!(
        matches!(err, Error::OutOfMemory { limit_mib: 64, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("reader.next"), "{err}");
    assert_still_serves(&runtime);
}

#[test]
fn trap_is_an_error_naming_plugin_and_call() {
    let runtime = runtime();
    let err = read(&runtime, "trap", Limits::default()).unwrap_err();
    assert!(matches!(err, Error::Trap { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("misbehave") && msg.contains("reader.next"),
        "{msg}"
    );
    assert_still_serves(&runtime);
}

#[test]
fn garbage_bytes_are_refused() {
    let runtime = runtime();
    let err = read(&runtime, "garbage", Limits::default()).unwrap_err();
    match &err {
        Error::Plugin { kind, message, .. } => {
            assert_eq!(*kind, ErrorKind::Data);
            assert!(message.contains("not Arrow IPC"), "{message}");
        }
        other => panic!("expected the host's refusal, got {other}"),
    }
    assert_still_serves(&runtime);
}

#[test]
fn not_a_component_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"\0asm garbage").unwrap();
    let err = runtime().load(&path).err().expect("junk must not load");
    assert!(matches!(err, Error::Load { .. }), "{err}");
    assert!(err.to_string().contains("junk"), "{err}");
}
