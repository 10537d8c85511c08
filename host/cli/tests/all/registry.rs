//! Connector authors' tools and the registry, end to end: scaffold, unit
//! test, build, conformance, keys, publish, install, run; and every way an
//! install must refuse (tampered, unsigned, untrusted, wrong WIT, unknown
//! version, registry down), leaving nothing half-installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::*;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(s: &Scratch, args: &[&str]) -> String {
    let out = s.sluice(args);
    assert!(out.status.success(), "sluice {args:?}:\n{}", text(&out));
    text(&out)
}

fn refused(s: &Scratch, args: &[&str]) -> String {
    let out = s.sluice(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "sluice {args:?} should fail cleanly:\n{}",
        text(&out)
    );
    text(&out)
}

/// `sluice plugin publish FILE --registry REGISTRY --key KEY`.
fn publish_signed<'a>(file: &'a Path, registry: &'a str, key: &'a str) -> [&'a str; 7] {
    let file = file.to_str().unwrap();
    [
        "plugin",
        "publish",
        file,
        "--registry",
        registry,
        "--key",
        key,
    ]
}

/// The first-party plugins the tests run (built beside `sluice`).
fn first_party() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_sluice"))
        .parent()
        .unwrap()
        .join("plugins")
}

/// Where plugin crates build: the shared wasm target directory (so the
/// SDK's dependencies are compiled once for every plugin on the machine).
fn wasm_target_dir() -> Option<String> {
    std::env::var("SLUICE_TEST_WASM_TARGET_DIR").ok()
}

/// Scaffold a plugin crate of `kind` in `dir`, with the lockfile of the
/// first-party plugins, so it builds against the dependencies compiled
/// already.
fn scaffold(s: &Scratch, name: &str, kind: &str) -> PathBuf {
    let printed = ok(s, &["plugin", "new", name, "--kind", kind]);
    assert!(printed.contains("sluice plugin build"), "{printed}");
    let dir = s.path(name);
    for file in ["Cargo.toml", "src/lib.rs", "README.md", ".gitignore"] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/Cargo.lock");
    std::fs::copy(lock, dir.join("Cargo.lock")).unwrap();
    dir
}

/// `cargo test --release` in a scaffolded crate: its unit tests on the
/// native harness.
fn unit_tests(dir: &Path) {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["test", "--release", "--lib"]).current_dir(dir);
    if let Ok(target) = std::env::var("CARGO_TARGET_DIR") {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "cargo test in {}:\n{}",
        dir.display(),
        text(&out)
    );
    assert!(text(&out).contains("test result: ok"), "{}", text(&out));
}

/// `sluice plugin build` in `dir`; returns the component.
fn build(s: &Scratch, dir: &Path, name: &str) -> PathBuf {
    let mut cmd = s.command(&["plugin", "build", dir.to_str().unwrap()], &[]);
    if let Some(target) = wasm_target_dir() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "plugin build:\n{}", text(&out));
    let printed = text(&out);
    assert!(
        printed.contains("KiB") && printed.contains("sluice:plugin@0.2.0"),
        "{printed}"
    );
    let wasm = dir.join(format!("target/sluice/{name}.wasm"));
    assert!(wasm.is_file(), "{printed}");
    wasm
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn scaffold_build_conform_publish_install_and_run_a_plugin() {
    let s = Scratch::new();
    // An author's side: a source, from nothing to a signed release.
    let crate_dir = scaffold(&s, "counter", "source");
    unit_tests(&crate_dir);
    let wasm = build(&s, &crate_dir, "counter");
    let report = ok(
        &s,
        &[
            "plugin",
            "test",
            wasm.to_str().unwrap(),
            "--config",
            r#"{"rows": 2500, "batch_rows": 1000}"#,
        ],
    );
    assert!(
        report.contains("resumes from a checkpoint with the rows after it: after")
            && report.contains("2500 rows")
            && !report.contains("FAIL"),
        "{report}"
    );
    let public = ok(&s, &["plugin", "keygen", "--out", "keys/release.key"]);
    let public = public.lines().next().unwrap().trim().to_string();
    assert!(public.starts_with("ed25519:"), "{public}");
    let published = ok(&s, &publish_signed(&wasm, "registry", "keys/release.key"));
    assert!(
        published.contains(&format!("signed by {public}")),
        "{published}"
    );
    let again = refused(&s, &publish_signed(&wasm, "registry", "keys/release.key"));
    assert!(again.contains("is already in"), "{again}");

    // A user's side: install by requirement, pinned, and run it.
    std::fs::create_dir_all(s.path("project")).unwrap();
    let in_project = |args: &[&str]| {
        let mut cmd = s.command(args, &[]);
        cmd.current_dir(s.path("project"));
        cmd.output().unwrap()
    };
    let untrusted = in_project(&[
        "plugin",
        "install",
        "counter@^0.1",
        "--registry",
        "../registry",
    ]);
    assert_eq!(untrusted.status.code(), Some(1));
    assert!(
        text(&untrusted).contains("which is not trusted"),
        "{}",
        text(&untrusted)
    );
    assert!(!s.path("project/sluice.lock").exists());
    let installed = in_project(&[
        "plugin",
        "install",
        "counter@^0.1",
        "--registry",
        "../registry",
        "--trusted-key",
        &public,
    ]);
    assert!(installed.status.success(), "{}", text(&installed));
    let lock = std::fs::read_to_string(s.path("project/sluice.lock")).unwrap();
    assert!(
        lock.contains("name = \"counter\"") && lock.contains("version = \"0.1.0\""),
        "{lock}"
    );
    s.write(
        "project/job.yaml",
        "source:\n  plugin: counter@^0.1\n  config: {rows: 1234}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: n.csv}\n",
    );
    let run = |s: &Scratch| {
        let mut cmd = s.command(&["run", "job.yaml", "--json"], &[]);
        cmd.current_dir(s.path("project"));
        cmd.output().unwrap()
    };
    let out = run(&s);
    assert!(out.status.success(), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows(&summary), 1234);
    assert_eq!(
        std::fs::read_to_string(s.path("project/out/n.csv"))
            .unwrap()
            .lines()
            .count(),
        1235
    );

    // Offline: the registry is gone, the lock is enough.
    std::fs::rename(s.path("registry"), s.path("registry.away")).unwrap();
    let out = run(&s);
    assert!(out.status.success(), "{}", text(&out));
    // An installed file that changed is refused before it runs.
    let installed_file = s.path("project/.sluice/plugins/source-counter-0.1.0.wasm");
    let original = std::fs::read(&installed_file).unwrap();
    let mut tampered = original.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0xff;
    std::fs::write(&installed_file, &tampered).unwrap();
    let out = run(&s);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("is not the locked artifact"),
        "{}",
        text(&out)
    );
    // `install` with no names brings back exactly what the lock lists...
    let out = in_project(&["plugin", "install"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("cannot be reached"), "{}", text(&out));
    std::fs::rename(s.path("registry.away"), s.path("registry")).unwrap();
    let out = in_project(&["plugin", "install"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(&installed_file).unwrap(), original);
    assert!(run(&s).status.success());
    // ...and a job that asks for a version the lock does not have says so.
    s.write(
        "project/job2.yaml",
        "source:\n  plugin: counter@^0.2\n  config: {rows: 1}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: m.csv}\n",
    );
    let mut cmd = s.command(&["run", "job2.yaml"], &[]);
    cmd.current_dir(s.path("project"));
    let out = cmd.output().unwrap();
    assert!(
        text(&out).contains("locks version 0.1.0, the job asks for ^0.2"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_scaffolded_filter_and_sink_pass_their_tests_and_the_conformance_suite() {
    let s = Scratch::new();
    for (name, kind, config) in [
        ("nonull", "filter", r#"{"column": "name"}"#),
        ("lines", "sink", "{}"),
    ] {
        let dir = scaffold(&s, name, kind);
        unit_tests(&dir);
        let wasm = build(&s, &dir, name);
        let report = ok(
            &s,
            &["plugin", "test", wasm.to_str().unwrap(), "--config", config],
        );
        assert!(
            !report.contains("FAIL") && !report.contains("  skip "),
            "{report}"
        );
    }
}

#[test]
fn the_first_party_plugins_install_from_a_registry_and_installs_refuse_what_they_must() {
    let s = Scratch::new();
    ok(&s, &["plugin", "keygen", "--out", "release.key"]);
    let public = ok(&s, &["plugin", "keygen", "--out", "other.key"]);
    let other_public = public.lines().next().unwrap().trim().to_string();
    let key_text = std::fs::read_to_string(s.path("release.key")).unwrap();
    assert!(key_text.starts_with("ed25519-secret:"));
    for plugin in [
        "source-generate",
        "source-file",
        "sink-file",
        "filter-select",
    ] {
        let file = first_party().join(format!("{plugin}.wasm"));
        ok(&s, &publish_signed(&file, "registry", "release.key"));
    }
    let release_public = {
        let index: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(s.path("registry/index/generate.json")).unwrap(),
        )
        .unwrap();
        index["releases"][0]["signature"]["key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let install = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["plugin", "install"];
        all.extend_from_slice(args);
        let mut cmd = s.command(&all, env);
        cmd.current_dir(s.path("project"));
        cmd.output().unwrap()
    };
    std::fs::create_dir_all(s.path("project")).unwrap();
    // `file` is a source and a sink: both come, both are pinned.
    let trust = [("SLUICE_TRUSTED_KEYS", release_public.as_str())];
    let out = install(
        &[
            "generate@0.1",
            "file@^0.1",
            "select",
            "--registry",
            "../registry",
        ],
        &trust,
    );
    assert!(out.status.success(), "{}", text(&out));
    let lock = std::fs::read_to_string(s.path("project/sluice.lock")).unwrap();
    for (kind, name) in [
        ("source", "generate"),
        ("source", "file"),
        ("sink", "file"),
        ("filter", "select"),
    ] {
        assert!(
            s.path(&format!("project/.sluice/plugins/{kind}-{name}-0.1.0.wasm"))
                .is_file(),
            "{kind} {name}: {lock}"
        );
    }
    s.write(
        "project/job.yaml",
        "source:\n  plugin: generate@^0.1\n  config: {rows: 3000}\nfilters:\n  - plugin: select@0.1\n    config: {where: 'price > 50000'}\nsink:\n  plugin: file@0.1\n  grants: {blob: ./out}\n  config: {path: g.parquet}\n",
    );
    // Only the locked copies exist for this run: no plugin directory at all.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.current_dir(s.path("project"))
        .args(["run", "job.yaml", "--json"])
        .env("SLUICE_CACHE_DIR", s.path("cache"))
        .env("SLUICE_PLUGIN_PATH", s.path("nowhere"))
        .env("SLUICE_LOG", "warn");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rows(&summary) > 0 && rows(&summary) < 3000, "{summary}");

    let before = files_under(&s.path("project"));
    let lock_before = std::fs::read_to_string(s.path("project/sluice.lock")).unwrap();
    let nothing_changed = || {
        assert_eq!(
            files_under(&s.path("project")),
            before,
            "an install left files"
        );
        assert_eq!(
            std::fs::read_to_string(s.path("project/sluice.lock")).unwrap(),
            lock_before
        );
    };
    // Signed by a key nobody trusts.
    let out = install(
        &[
            "generate",
            "--registry",
            "../registry",
            "--trusted-key",
            &other_public,
        ],
        &[],
    );
    assert!(text(&out).contains("is not trusted"), "{}", text(&out));
    nothing_changed();
    // A version that does not exist names the ones that do.
    let out = install(&["generate@^0.7", "--registry", "../registry"], &trust);
    assert!(
        text(&out).contains("no release of generate matches ^0.7") && text(&out).contains("0.1.0"),
        "{}",
        text(&out)
    );
    nothing_changed();
    // An artifact changed after publishing.
    let artifact = s.path("registry/artifacts/select/0.1.0/filter-select-0.1.0.wasm");
    let good = std::fs::read(&artifact).unwrap();
    let mut bad = good.clone();
    bad[100] ^= 1;
    std::fs::write(&artifact, &bad).unwrap();
    let out = install(&["select", "--registry", "../registry"], &trust);
    assert!(
        text(&out).contains("was changed after publishing, refusing it"),
        "{}",
        text(&out)
    );
    nothing_changed();
    std::fs::write(&artifact, &good).unwrap();
    // A signature that does not verify (the index edited to claim other bytes).
    let index_path = s.path("registry/index/select.json");
    let index = std::fs::read_to_string(&index_path).unwrap();
    let mut edited: serde_json::Value = serde_json::from_str(&index).unwrap();
    edited["releases"][0]["sha256"] = serde_json::json!(sluice_sha256(&bad));
    std::fs::write(&artifact, &bad).unwrap();
    std::fs::write(&index_path, edited.to_string()).unwrap();
    let out = install(&["select", "--registry", "../registry"], &trust);
    assert!(
        text(&out).contains("signature does not verify"),
        "{}",
        text(&out)
    );
    nothing_changed();
    std::fs::write(&artifact, &good).unwrap();
    // Built for a WIT version this host does not serve.
    edited["releases"][0]["sha256"] = serde_json::json!(sluice_sha256(&good));
    edited["releases"][0]["wit"] = serde_json::json!("1.0.0");
    std::fs::write(&index_path, edited.to_string()).unwrap();
    let out = install(&["select", "--registry", "../registry"], &trust);
    assert!(
        text(&out).contains("sluice:plugin@1.0.0")
            && text(&out).contains("sluice:plugin@0.2.x or 0.1.x"),
        "{}",
        text(&out)
    );
    nothing_changed();
    std::fs::write(&index_path, &index).unwrap();
    // Unsigned: refused unless allowed.
    ok(
        &s,
        &[
            "plugin",
            "publish",
            first_party().join("source-generate.wasm").to_str().unwrap(),
            "--registry",
            "unsigned-registry",
            "--unsigned",
        ],
    );
    let out = install(&["generate", "--registry", "../unsigned-registry"], &trust);
    assert!(text(&out).contains("is not signed"), "{}", text(&out));
    nothing_changed();
    let out = install(
        &[
            "generate",
            "--registry",
            "../unsigned-registry",
            "--allow-unsigned",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    // A registry that is down, or not there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("http://127.0.0.1:{port}/plugins");
    let out = install(&["generate", "--registry", &down], &trust);
    assert!(
        text(&out).contains(&format!("registry {down} cannot be reached")),
        "{}",
        text(&out)
    );
    let out = install(&["generate", "--registry", "../no-such-dir"], &trust);
    assert!(text(&out).contains("cannot be reached"), "{}", text(&out));
    // Publishing without a key is refused, saying how to sign.
    let out = refused(
        &s,
        &[
            "plugin",
            "publish",
            first_party().join("sink-file.wasm").to_str().unwrap(),
            "--registry",
            "registry",
        ],
    );
    assert!(out.contains("sluice plugin keygen"), "{out}");
}

fn sluice_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A static file server over `dir` (Python's, as any web server would do):
/// an HTTP(S) registry is nothing more than the directory's files.
struct FileServer {
    child: std::process::Child,
    url: String,
}

impl FileServer {
    fn start(dir: &Path) -> FileServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 serves the registry directory");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed().as_secs() < 30,
                "file server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        FileServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_registry_served_over_http_installs_and_an_install_with_no_names_restores_the_lock() {
    let s = Scratch::new();
    let public = ok(&s, &["plugin", "keygen", "--out", "release.key"]);
    let public = public.lines().next().unwrap().trim().to_string();
    for plugin in ["source-generate", "filter-select"] {
        let file = first_party().join(format!("{plugin}.wasm"));
        ok(&s, &publish_signed(&file, "site/plugins", "release.key"));
    }
    let server = FileServer::start(&s.path("site"));
    let registry = format!("{}/plugins", server.url);
    std::fs::create_dir_all(s.path("project")).unwrap();
    let in_project = |args: &[&str]| {
        let mut cmd = s.command(args, &[("SLUICE_TRUSTED_KEYS", public.as_str())]);
        cmd.current_dir(s.path("project"));
        cmd.output().unwrap()
    };
    let out = in_project(&[
        "plugin",
        "install",
        "generate",
        "select@^0.1",
        "--registry",
        &registry,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let lock = std::fs::read_to_string(s.path("project/sluice.lock")).unwrap();
    assert_eq!(lock.matches(&registry).count(), 2, "{lock}");
    let listed = in_project(&["plugin", "list"]);
    assert!(
        text(&listed).contains("generate") && text(&listed).contains("0.1.0"),
        "{}",
        text(&listed)
    );
    // A fresh checkout has the lock but not the files: `install` brings them.
    std::fs::remove_dir_all(s.path("project/.sluice")).unwrap();
    let out = in_project(&["plugin", "install"]);
    assert!(out.status.success(), "{}", text(&out));
    s.write(
        "project/job.yaml",
        "source:\n  plugin: generate@0.1\n  config: {rows: 100}\nfilters:\n  - plugin: select@^0.1\n    config: {keep: [id]}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: ids.csv}\n",
    );
    let out = in_project(&["run", "job.yaml", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let csv = std::fs::read_to_string(s.path("project/out/ids.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("id"));
    assert_eq!(csv.lines().count(), 101);
    // The server goes away: the locked copies still run, offline.
    drop(server);
    let out = in_project(&["run", "job.yaml", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
}
