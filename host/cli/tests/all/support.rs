//! Helpers: a scratch directory per test with its own state and cache.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// A test's scratch space.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    cache: PathBuf,
}

impl Scratch {
    /// A new scratch dir sharing the machine-wide component cache (so tests
    /// don't each recompile the plugins).
    pub fn new() -> Scratch {
        let cache = std::env::var_os("SLUICE_TEST_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("sluice-test-cache"));
        Scratch {
            dir: tempfile::tempdir().unwrap(),
            cache,
        }
    }

    /// Use a private component cache (for cache tests).
    pub fn with_private_cache(mut self) -> Scratch {
        self.cache = self.dir.path().join("cache");
        self
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// `sluice <args>` run in the scratch dir.
    pub fn sluice(&self, args: &[&str]) -> Output {
        self.sluice_env(args, &[])
    }

    /// `sluice <args>` with extra environment variables.
    pub fn sluice_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args, env);
        let out = cmd.output().expect("run sluice");
        assert_plugins_built(&out);
        out
    }

    /// The command `sluice_env` runs, to spawn and control (kill) directly.
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.current_dir(self.dir.path())
            .envs(env.iter().copied())
            .args(args)
            .env("SLUICE_CACHE_DIR", &self.cache)
            .env("SLUICE_LOG", "warn");
        if let Some(dir) = std::env::var_os("SLUICE_TEST_PLUGIN_DIR") {
            cmd.env("SLUICE_PLUGIN_PATH", dir);
        }
        cmd
    }

    /// Run a job that must succeed; returns its JSON summary.
    pub fn run_ok(&self, job: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["run", job, "--json"];
        args.extend_from_slice(extra);
        let out = self.sluice(&args);
        assert!(
            out.status.success(),
            "sluice {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "summary is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Run a job that must fail; returns stderr.
    pub fn run_err(&self, job: &str) -> String {
        let out = self.sluice(&["run", job]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // A clean failure exits with 1; a panic of the host would be 101.
        assert_eq!(
            out.status.code(),
            Some(1),
            "sluice run {job} should fail cleanly; stderr:\n{stderr}"
        );
        stderr
    }
}

fn assert_plugins_built(out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("no source plugin `file`"),
        "plugins are not built: run `cargo xtask test` (it builds them first)\n{stderr}"
    );
}

/// Every batch of a Parquet file.
pub fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The values of an `Int64` column.
pub fn int64s(batch: &RecordBatch, column: &str) -> Vec<i64> {
    batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"))
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap_or_else(|| panic!("{column} is not Int64"))
        .values()
        .to_vec()
}

/// One batch from many (same schema).
pub fn concat(batches: &[RecordBatch]) -> RecordBatch {
    assert!(!batches.is_empty(), "no batches");
    arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap()
}

/// The batch as CSV text, for whole-content comparisons.
pub fn to_csv(batch: &RecordBatch) -> String {
    let mut out = Vec::new();
    {
        let mut w = arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut out);
        w.write(batch).unwrap();
    }
    String::from_utf8(out).unwrap()
}

/// Rows in a summary.
pub fn rows(summary: &serde_json::Value) -> u64 {
    summary["rows"].as_u64().unwrap()
}

pub fn schema_names(batch: &RecordBatch) -> Vec<String> {
    let schema: Arc<_> = batch.schema();
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

/// The first column of every CSV file a run reports under `outputs`
/// (in `out/`), as numbers, sorted.
pub fn output_ids(s: &Scratch, summary: &serde_json::Value) -> Vec<u64> {
    let mut ids = Vec::new();
    for o in summary["outputs"].as_array().unwrap() {
        let text = std::fs::read_to_string(s.path("out").join(o.as_str().unwrap())).unwrap();
        ids.extend(
            text.lines()
                .skip(1)
                .map(|l| l.split(',').next().unwrap().parse::<u64>().unwrap()),
        );
    }
    ids.sort();
    ids
}

/// An HTTP response, as the tests read it.
pub struct HttpReply {
    pub status: u16,
    pub headers: String,
    pub body: String,
    /// The body's bytes (`body` is them as text, lossily).
    pub raw: Vec<u8>,
}

impl HttpReply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// A response header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port`, over a plain socket (so the
/// tests need no HTTP client crate): `Connection: close`, body read to the end.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<HttpReply> {
    let body = body.map(|b| ("application/json", b.as_bytes()));
    http_body(port, method, path, headers, body)
}

/// [`http`] with a body of any type: `(content type, bytes)`.
pub fn http_body(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> std::io::Result<HttpReply> {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port))?;
    socket.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some((content_type, body)) = body {
        request.push_str(&format!(
            "content-type: {content_type}\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body.map_or(&[][..], |(_, b)| b));
    socket.write_all(&bytes)?;
    // Read the head, then exactly the body its framing says: a server may
    // keep the connection open despite `Connection: close`.
    let mut reader = std::io::BufReader::new(socket);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut reader, &mut line)? == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let reply = HttpReply {
        status,
        headers: headers.to_string(),
        body: String::new(),
        raw: Vec::new(),
    };
    let mut raw = Vec::new();
    if let Some(len) = reply
        .header("content-length")
        .and_then(|l| l.parse::<usize>().ok())
    {
        raw.resize(len, 0);
        reader.read_exact(&mut raw)?;
    } else if reply
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            std::io::BufRead::read_line(&mut reader, &mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            raw.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut raw)?;
    }
    Ok(HttpReply {
        body: String::from_utf8_lossy(&raw).into_owned(),
        raw,
        ..reply
    })
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Python or JavaScript plugin (a directory under the repository, such
/// as `tests/sdk-plugins/py-synthetic`), built by `sluice plugin build`
/// the first time its sources, its SDK or the contract change, then kept
/// in the test cache: componentize-py and componentize-js take 10–20 s a
/// plugin.
pub fn sdk_plugin(rel: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join(rel);
    // The plugin, the SDK of its language and the WIT it builds against.
    let sdk: &[&str] = if dir.join("package.json").is_file() {
        &["sdk/js/src", "sdk/js/bin"]
    } else {
        &["sdk/python/src"]
    };
    let mut hash = Sha256::new();
    let trees = [dir.clone(), root.join("sdk/wit"), root.join("wit")];
    for tree in trees.into_iter().chain(sdk.iter().map(|d| root.join(d))) {
        let mut files = Vec::new();
        collect_files(&tree, &mut files);
        files.sort();
        for file in files {
            hash.update(
                file.strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .as_bytes(),
            );
            hash.update(std::fs::read(&file).unwrap());
        }
    }
    let digest = hash.finalize();
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let cache = std::env::var_os("SLUICE_TEST_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("sluice-test-cache"))
        .join("sdk-plugins");
    let out = cache.join(format!(
        "{name}-{}.wasm",
        digest[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if out.is_file() {
        return out;
    }
    std::fs::create_dir_all(&cache).unwrap();
    let partial = out.with_extension(format!("partial-{}.wasm", std::process::id()));
    let built = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["plugin", "build"])
        .arg(&dir)
        .arg("--out")
        .arg(&partial)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "sluice plugin build {rel} failed:\n{}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    std::fs::rename(&partial, &out).unwrap();
    out
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            || name == "__pycache__"
            || name == "target"
            || name == "node_modules"
        {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}
