//! S3 grants against a real S3-compatible server: the moto server `cargo
//! xtask test` starts (`SLUICE_TEST_S3_ENDPOINT`, default
//! `http://127.0.0.1:5055`). Fixtures are put and checked with plain HTTP
//! requests, not through Sluice's own S3 code. Each test has its own bucket.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::support::*;

pub(crate) fn endpoint() -> String {
    std::env::var("SLUICE_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:5055".into())
}

/// The environment `sluice` runs with: made-up keys (moto takes any).
pub(crate) fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("S3_ENDPOINT", endpoint.to_string()),
    ]
}

/// `env` as the borrowed pairs `sluice_env` takes.
pub(crate) fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// One HTTP/1.1 request to the S3 server; returns status and body. The
/// server checks no signature (but wants one present to treat the request
/// as the bucket owner's).
fn http(method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let base = endpoint();
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = TcpStream::connect(host).unwrap_or_else(|e| panic!("S3 server {base}: {e}"));
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
         SignedHeaders=host, Signature=0\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(body).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 4 + size..];
    }
}

/// A fresh bucket for one test.
pub(crate) struct Bucket(pub(crate) String);

impl Bucket {
    pub(crate) fn new(test: &str) -> Bucket {
        let name = format!("sluice-{test}-{}", std::process::id()).replace('_', "-");
        let (status, body) = http("PUT", &format!("/{name}"), b"");
        assert!(
            status == 200 || status == 409,
            "create bucket {name}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        Bucket(name)
    }

    pub(crate) fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.0)
    }

    pub(crate) fn put(&self, key: &str, data: impl AsRef<[u8]>) {
        let (status, body) = http("PUT", &format!("/{}/{key}", self.0), data.as_ref());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    pub(crate) fn get(&self, key: &str) -> Vec<u8> {
        let (status, body) = http("GET", &format!("/{}/{key}", self.0), b"");
        assert_eq!(status, 200, "GET {key}: {}", String::from_utf8_lossy(&body));
        body
    }

    pub(crate) fn delete(&self, key: &str) {
        http("DELETE", &format!("/{}/{key}", self.0), b"");
    }

    /// Every key in the bucket, sorted.
    pub(crate) fn keys(&self) -> Vec<String> {
        let (status, body) = http("GET", &format!("/{}?list-type=2", self.0), b"");
        assert_eq!(status, 200);
        let mut keys = xml_values(&String::from_utf8_lossy(&body), "Key");
        keys.sort();
        keys
    }

    /// Keys of multipart uploads started and neither completed nor aborted.
    pub(crate) fn open_uploads(&self) -> Vec<String> {
        let (status, body) = http("GET", &format!("/{}?uploads", self.0), b"");
        assert_eq!(status, 200);
        xml_values(&String::from_utf8_lossy(&body), "Key")
    }
}

fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(v, _)| v.to_string()))
        .collect()
}

fn run(s: &Scratch, job: &str) -> serde_json::Value {
    let out = s.sluice_env(&["run", job, "--json"], &refs(&aws_env(&endpoint())));
    assert!(
        out.status.success(),
        "sluice run {job} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run_err_with(s: &Scratch, job: &str, endpoint: &str) -> String {
    let out = s.sluice_env(&["run", job], &refs(&aws_env(endpoint)));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "should fail cleanly:\n{stderr}");
    stderr
}

pub(crate) const S3: &str = "s3: {endpoint: '${env:S3_ENDPOINT}'}\n";

fn orders_csv(rows: usize) -> String {
    let mut csv = String::from("id,name,amount\n");
    for i in 0..rows {
        csv.push_str(&format!("{i},name {i},{}.{}\n", i % 1000, i % 10));
    }
    csv
}

#[test]
fn local_csv_to_s3_parquet_and_back() {
    let bucket = Bucket::new("roundtrip");
    let s = Scratch::new();
    s.write("in/orders.csv", orders_csv(10_000));
    s.write(
        "up.yaml",
        format!(
            "{S3}source: {{plugin: file, grants: {{blob: ./in}}, config: {{paths: ['*.csv']}}}}\n\
             sink: {{plugin: file, grants: {{blob: '{}'}}, config: {{path: 'orders/{{task}}-{{part}}.parquet', max_rows_per_file: 4000}}}}\n",
            bucket.url("lake")
        ),
    );
    let up = run(&s, "up.yaml");
    assert_eq!(rows(&up), 10_000);
    assert_eq!(
        bucket.keys(),
        [
            "lake/orders/0-000.parquet",
            "lake/orders/0-001.parquet",
            "lake/orders/0-002.parquet"
        ]
    );
    assert!(
        bucket.open_uploads().is_empty(),
        "{:?}",
        bucket.open_uploads()
    );
    // Parquet read back from S3 (footer and column chunks by ranged GETs).
    s.write(
        "down.yaml",
        format!(
            "{S3}source: {{plugin: file, grants: {{blob: '{}'}}, config: {{paths: ['orders/*.parquet']}}}}\n\
             sink: {{plugin: file, grants: {{blob: ./back}}, config: {{path: 'orders.csv'}}}}\nexec: {{parallelism: 1}}\n",
            bucket.url("lake/")
        ),
    );
    let down = run(&s, "down.yaml");
    assert_eq!(rows(&down), 10_000);
    let mut back: Vec<String> = std::fs::read_dir(s.path("back"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .flat_map(|text| text.lines().skip(1).map(String::from).collect::<Vec<_>>())
        .collect();
    back.sort_by_key(|l| l.split(',').next().unwrap().parse::<u64>().unwrap());
    let original: Vec<String> = orders_csv(10_000)
        .lines()
        .skip(1)
        .map(String::from)
        .collect();
    assert_eq!(back.len(), original.len());
    assert_eq!(back[0], original[0]);
    assert_eq!(back[9_999], original[9_999]);
}

#[test]
fn big_outputs_stream_as_multipart_uploads_and_csv_reads_in_ranges() {
    let bucket = Bucket::new("multipart");
    let s = Scratch::new();
    // ~20 MB of CSV: three 8 MiB parts.
    s.write(
        "gen.yaml",
        format!(
            "{S3}source: {{plugin: generate, config: {{rows: 300000}}}}\n\
             sink: {{plugin: file, grants: {{blob: '{}'}}, config: {{path: 'big.csv'}}}}\nexec: {{parallelism: 1}}\n",
            bucket.url("")
        ),
    );
    let summary = run(&s, "gen.yaml");
    assert_eq!(rows(&summary), 300_000);
    let csv = bucket.get("big.csv");
    assert!(csv.len() > 16 << 20, "only {} bytes", csv.len());
    assert_eq!(csv.iter().filter(|&&b| b == b'\n').count(), 300_001);
    assert!(bucket.open_uploads().is_empty());
    // Read back in byte ranges of lines, in parallel.
    s.write(
        "read.yaml",
        format!(
            "{S3}source: {{plugin: file, grants: {{blob: '{}'}}, config: {{paths: [big.csv], split_bytes: 5000000}}}}\n\
             sink: {{plugin: file, grants: {{blob: ./out}}, config: {{path: 'x.parquet'}}}}\n",
            bucket.url("")
        ),
    );
    let read = run(&s, "read.yaml");
    assert_eq!(rows(&read), 300_000);
    assert!(read["tasks"].as_u64().unwrap() >= 4, "{read}");
}

#[test]
fn a_failed_run_leaves_no_object_and_no_open_upload() {
    let bucket = Bucket::new("failed");
    let s = Scratch::new();
    // A bad value far into the file: the sink has uploaded parts by then.
    let mut csv = orders_csv(400_000);
    csv.push_str("x,broken,not-a-number\n");
    s.write("in/orders.csv", csv);
    s.write(
        "j.yaml",
        format!(
            "{S3}source: {{plugin: file, grants: {{blob: ./in}}, config: {{paths: ['*.csv'], columns: {{amount: float64}}}}}}\n\
             sink: {{plugin: file, grants: {{blob: '{}'}}, config: {{path: 'out.csv'}}}}\nexec: {{retries: 0}}\n",
            bucket.url("out")
        ),
    );
    let err = run_err_with(&s, "j.yaml", &endpoint());
    assert!(err.contains("orders.csv"), "{err}");
    assert!(bucket.keys().is_empty(), "{:?}", bucket.keys());
    assert!(
        bucket.open_uploads().is_empty(),
        "{:?}",
        bucket.open_uploads()
    );
}

#[test]
fn a_committed_upload_is_completed_by_the_next_run_and_orphans_are_aborted() {
    let bucket = Bucket::new("rollforward");
    let s = Scratch::new();
    s.write(
        "j.yaml",
        format!(
            "{S3}source: {{plugin: generate, config: {{rows: 400000, batch_size: 50000}}}}\n\
             sink: {{plugin: file, grants: {{blob: '{}'}}, config: {{path: 'part-{{part}}.csv'}}}}\n\
             exec: {{retries: 0, commit_every_rows: 100000}}\n",
            bucket.url("lake")
        ),
    );
    let mut env = aws_env(&endpoint());
    env.push(("SLUICE_FAILPOINTS", "pipeline.before-publish@2".into()));
    // The second commit's state is saved; the process fails before it
    // completes that commit's upload.
    let out = s.sluice_env(&["run", "j.yaml"], &refs(&env));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(bucket.keys(), ["lake/part-000.csv"]);
    assert_eq!(bucket.open_uploads(), ["lake/part-001.csv"]);
    // The next run completes it from the parts S3 holds, and goes on.
    let again = run(&s, "j.yaml");
    assert_eq!(rows(&again), 200_000);
    assert!(
        bucket.open_uploads().is_empty(),
        "{:?}",
        bucket.open_uploads()
    );
    let keys = bucket.keys();
    assert_eq!(keys.len(), 4, "{keys:?}");
    let mut ids: Vec<u64> = Vec::new();
    for key in &keys {
        let text = String::from_utf8(bucket.get(key)).unwrap();
        ids.extend(
            text.lines()
                .skip(1)
                .map(|l| l.split(',').next().unwrap().parse::<u64>().unwrap()),
        );
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..400_000).collect::<Vec<_>>());
}

#[test]
fn a_grant_is_scoped_to_its_prefix() {
    let bucket = Bucket::new("scoped");
    bucket.put("raw/a.csv", "id\n1\n");
    bucket.put("secret/pw.csv", "id\n2\n");
    let s = Scratch::new();
    let job = |paths: &str| {
        format!(
            "{S3}source: {{plugin: file, grants: {{blob: '{}'}}, config: {{paths: {paths}}}}}\n\
             sink: {{plugin: file, grants: {{blob: ./out}}, config: {{path: 'o.csv'}}}}\n",
            bucket.url("raw/")
        )
    };
    s.write("all.yaml", job("['**/*.csv']"));
    assert_eq!(rows(&run(&s, "all.yaml")), 1);
    for escape in ["['../secret/*.csv']", "['/secret/*.csv']"] {
        s.write("escape.yaml", job(escape));
        let err = run_err_with(&s, "escape.yaml", &endpoint());
        assert!(err.contains("leaves the granted root"), "{err}");
    }
}

#[test]
fn missing_bucket_and_refused_credentials_fail_before_any_output() {
    let s = Scratch::new();
    s.write("in/a.csv", "id\n1\n");
    let sink_to = |url: &str| {
        format!(
            "{S3}source: {{plugin: file, grants: {{blob: ./in}}, config: {{paths: ['*.csv']}}}}\n\
             sink: {{plugin: file, grants: {{blob: '{url}'}}, config: {{path: 'o.csv'}}}}\n"
        )
    };
    s.write("missing.yaml", sink_to("s3://no-such-bucket-here/x/"));
    let err = run_err_with(&s, "missing.yaml", &endpoint());
    assert!(
        err.contains("sink.grants.blob") && err.contains("bucket does not exist"),
        "{err}"
    );
    // A server that enforces IAM refuses the made-up keys.
    let denying = std::env::var("SLUICE_TEST_S3_DENYING_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:5056".into());
    s.write("denied.yaml", sink_to("s3://any-bucket/x/"));
    let err = run_err_with(&s, "denied.yaml", &denying);
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(!err.contains("AWS_SECRET"), "{err}");
    // A bucket policy that denies writes under a prefix: the upload is
    // refused, the task fails, nothing appears.
    let bucket = Bucket::new("denied");
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::{}/locked/*"}}]}}"#,
        bucket.0
    );
    let (status, body) = http("PUT", &format!("/{}?policy", bucket.0), policy.as_bytes());
    assert!(status < 300, "{status} {}", String::from_utf8_lossy(&body));
    s.write("locked.yaml", sink_to(&bucket.url("locked/")));
    let err = run_err_with(&s, "locked.yaml", &endpoint());
    assert!(
        err.contains("auth error") && err.contains("access denied"),
        "{err}"
    );
    assert!(bucket.keys().is_empty());
    assert!(bucket.open_uploads().is_empty());
}

#[test]
fn incremental_by_last_path_lists_only_newer_keys() {
    let bucket = Bucket::new("lastpath");
    bucket.put("in/2024-01-01.csv", "id\n1\n2\n");
    bucket.put("in/2024-01-02.csv", "id\n3\n");
    let s = Scratch::new();
    s.write(
        "j.yaml",
        format!(
            "{S3}source: {{plugin: file, grants: {{blob: '{}'}}, config: {{paths: ['*.csv'], incremental: last_path}}}}\n\
             sink: {{plugin: file, grants: {{blob: ./out}}, config: {{path: 'o.csv'}}}}\n",
            bucket.url("in")
        ),
    );
    assert_eq!(rows(&run(&s, "j.yaml")), 3);
    assert_eq!(rows(&run(&s, "j.yaml")), 0);
    bucket.put("in/2024-01-03.csv", "id\n4\n5\n6\n");
    // Sorts before the last path read: last_path never lists it (as Embulk).
    bucket.put("in/2023-12-31.csv", "id\n0\n");
    assert_eq!(rows(&run(&s, "j.yaml")), 3);
    assert_eq!(rows(&run(&s, "j.yaml")), 0);
    bucket.put("in/2024-01-04.csv", "id\n7\n");
    assert_eq!(rows(&run(&s, "j.yaml")), 1);
    assert_eq!(rows(&run(&s, "j.yaml")), 0);
    // A full refresh reads everything again.
    let out = s.sluice_env(
        &["run", "j.yaml", "--json", "--full-refresh"],
        &refs(&aws_env(&endpoint())),
    );
    assert!(out.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows(&summary), 8);
}

#[test]
fn truncated_gzip_and_a_vanished_key_are_clear_errors() {
    let bucket = Bucket::new("badinput");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(orders_csv(50_000).as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    bucket.put("in/orders.csv.gz", &gz[..gz.len() / 2]);
    let s = Scratch::new();
    s.write(
        "gz.yaml",
        format!(
            "{S3}source: {{plugin: file, grants: {{blob: '{}'}}, config: {{paths: ['*.csv.gz']}}}}\n\
             sink: {{plugin: file, grants: {{blob: ./out}}, config: {{path: 'o.csv'}}}}\n",
            bucket.url("in")
        ),
    );
    let err = run_err_with(&s, "gz.yaml", &endpoint());
    assert!(err.contains("orders.csv.gz"), "{err}");
    assert!(!s.path("out/o.csv").exists());
}

#[test]
fn a_key_deleted_after_listing_fails_its_task_clearly() {
    let bucket = Bucket::new("vanish");
    bucket.put("in/a.csv", orders_csv(600_000));
    bucket.put("in/b.csv", orders_csv(10));
    let s = Scratch::new();
    s.write(
        "j.yaml",
        format!(
            "{S3}source: {{plugin: file, grants: {{blob: '{}'}}, config: {{paths: ['*.csv']}}}}\n\
             sink: {{plugin: file, grants: {{blob: '{}'}}, config: {{path: 'o.csv'}}}}\n\
             exec: {{parallelism: 1, retries: 0}}\n",
            bucket.url("in"),
            bucket.url("out")
        ),
    );
    let child = s
        .command(&["run", "j.yaml"], &refs(&aws_env(&endpoint())))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Files are planned (listed) first, then read in order. Once a.csv's
    // output is uploading, b.csv was listed and is not open yet: delete it.
    let started = std::time::Instant::now();
    while bucket.open_uploads().is_empty() {
        assert!(
            started.elapsed().as_secs() < 60,
            "no upload started; is the run stuck?"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    bucket.delete("in/b.csv");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("in/b.csv: no such object"), "{stderr}");
    // a.csv's task committed before; nothing of b.csv's was written.
    assert_eq!(bucket.keys(), ["in/a.csv", "out/o.csv"]);
    assert!(bucket.open_uploads().is_empty());
}

#[test]
fn s3_examples_run() {
    let bucket = Bucket::new("examples");
    let s = Scratch::new();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for entry in std::fs::read_dir(examples.join("data/logs")).unwrap() {
        let entry = entry.unwrap();
        s.write(
            &format!("data/logs/{}", entry.file_name().to_string_lossy()),
            std::fs::read(entry.path()).unwrap(),
        );
    }
    for name in ["logs-to-s3.yaml", "s3-new-files.yaml"] {
        s.write(name, std::fs::read(examples.join(name)).unwrap());
    }
    // The endpoint the way an operator sets it for MinIO: AWS_ENDPOINT_URL.
    let lake = bucket.url("lake/");
    let mut env = aws_env(&endpoint());
    env.push(("AWS_ENDPOINT_URL", endpoint()));
    env.push(("LAKE_URL", lake));
    let env = refs(&env);
    let run = |job: &str| {
        let out = s.sluice_env(&["run", job, "--json"], &env);
        assert!(
            out.status.success(),
            "{job}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        rows(&serde_json::from_slice(&out.stdout).unwrap())
    };
    let written = run("logs-to-s3.yaml");
    assert!(written > 0);
    assert!(
        bucket
            .keys()
            .iter()
            .all(|k| k.starts_with("lake/logs/") && k.ends_with(".parquet"))
    );
    assert_eq!(run("s3-new-files.yaml"), written);
    assert_eq!(run("s3-new-files.yaml"), 0);
}

#[test]
fn workflow_task_logs_are_uploaded_to_s3() {
    let bucket = Bucket::new("task-logs");
    let s = Scratch::new();
    s.write(
        "proj/flow.yaml",
        "tasks:\n  - {name: hello, echo: 'hello from a task on ${session_date}'}\n",
    );
    let mut env = aws_env(&endpoint());
    env.push(("AWS_ENDPOINT_URL", endpoint()));
    env.push(("SLUICE_LOG_URL", bucket.url("logs")));
    let out = s.sluice_env(
        &[
            "workflow",
            "run",
            "proj/flow.yaml",
            "--session",
            "2026-12-02",
        ],
        &refs(&env),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = bucket.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with("logs/1/") && keys[0].ends_with(".1.log"),
        "{keys:?}"
    );
    let text = String::from_utf8(bucket.get(&keys[0])).unwrap();
    assert!(text.contains("hello from a task on 2026-12-02"), "{text}");
    // `sluice logs` reads it back from S3; the local copy is gone.
    let logs = s.sluice_env(&["logs", "1"], &refs(&env));
    let printed = String::from_utf8_lossy(&logs.stdout);
    assert!(
        printed.contains("s3://") && printed.contains("hello from a task"),
        "{printed}"
    );
    assert!(
        std::fs::read_dir(s.path(".sluice/logs/1")).map_or(true, |mut d| d.next().is_none()),
        "the local log was kept"
    );
}

#[test]
fn a_plugin_registry_on_s3_publishes_installs_and_runs() {
    let bucket = Bucket::new("registry");
    let s = Scratch::new();
    let mut env = aws_env(&endpoint());
    env.push(("AWS_ENDPOINT_URL", endpoint()));
    let registry = bucket.url("plugins");
    env.push(("SLUICE_REGISTRY", registry.clone()));
    let keygen = s.sluice(&["plugin", "keygen", "--out", "release.key"]);
    assert!(keygen.status.success());
    let public = String::from_utf8_lossy(&keygen.stdout)
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    env.push((
        "SLUICE_SIGNING_KEY_FILE",
        s.path("release.key").display().to_string(),
    ));
    env.push(("SLUICE_TRUSTED_KEYS", public));
    let generate = std::path::Path::new(env!("CARGO_BIN_EXE_sluice"))
        .parent()
        .unwrap()
        .join("plugins/source-generate.wasm");
    let env = refs(&env);
    let out = s.sluice_env(&["plugin", "publish", generate.to_str().unwrap()], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        bucket
            .keys()
            .contains(&"plugins/index/generate.json".to_string()),
        "{:?}",
        bucket.keys()
    );
    let out = s.sluice_env(&["plugin", "install", "generate@^0.1"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lock = std::fs::read_to_string(s.path("sluice.lock")).unwrap();
    assert!(
        lock.contains(&registry.trim_end_matches('/').to_string()),
        "{lock}"
    );
    s.write(
        "job.yaml",
        "source:\n  plugin: generate@0.1\n  config: {rows: 50}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: g.csv}\n",
    );
    let out = s.sluice_env(&["run", "job.yaml", "--json"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rows(&serde_json::from_slice(&out.stdout).unwrap()), 50);
    // The bucket's artifact changed: a fresh install refuses it.
    std::fs::remove_dir_all(s.path(".sluice/plugins")).unwrap();
    let key = "plugins/artifacts/generate/0.1.0/source-generate-0.1.0.wasm";
    let mut bytes = bucket.get(key);
    bytes[64] ^= 1;
    bucket.put(key, &bytes);
    let out = s.sluice_env(&["plugin", "install"], &env);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("was changed after publishing"), "{err}");
    assert!(
        !s.path(".sluice/plugins/source-generate-0.1.0.wasm")
            .exists()
    );
}
