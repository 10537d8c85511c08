//! `gs://` grants against a real GCS emulator: the fake-gcs-server `cargo
//! xtask test` starts (`SLUICE_TEST_GCS_ENDPOINT`, default
//! `http://127.0.0.1:5058`). Fixtures are put and checked with plain HTTP
//! requests to its JSON API, not through Sluice's own GCS code. Each test
//! has its own bucket.

use crate::s3::refs;
use crate::support::*;

pub(crate) fn endpoint() -> String {
    std::env::var("SLUICE_TEST_GCS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:5058".into())
}

fn port() -> u16 {
    endpoint()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("the GCS endpoint has a port")
}

/// The environment `sluice` runs with.
pub(crate) fn gcs_env() -> Vec<(&'static str, String)> {
    vec![("GCS_ENDPOINT", endpoint())]
}

/// The job's `gcs:` section: the emulator, no credentials.
pub(crate) const GCS: &str = "gcs: {endpoint: '${env:GCS_ENDPOINT}', credentials: anonymous}\n";

fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A fresh bucket for one test.
pub(crate) struct Bucket(String);

impl Bucket {
    pub(crate) fn new(test: &str) -> Bucket {
        let name = format!("sluice-{test}-{}", std::process::id()).replace('_', "-");
        let body = format!("{{\"name\": \"{name}\"}}");
        let reply = http(
            port(),
            "POST",
            "/storage/v1/b?project=test",
            &[],
            Some(&body),
        )
        .expect("the GCS emulator answers");
        assert!(
            reply.status == 200 || reply.status == 409,
            "create bucket {name}: {} {}",
            reply.status,
            reply.body
        );
        Bucket(name)
    }

    pub(crate) fn url(&self, prefix: &str) -> String {
        format!("gs://{}/{prefix}", self.0)
    }

    fn put(&self, name: &str, data: &str) {
        let path = format!(
            "/upload/storage/v1/b/{}/o?uploadType=media&name={}",
            self.0,
            encode(name)
        );
        let reply = http_body(
            port(),
            "POST",
            &path,
            &[],
            Some(("text/csv", data.as_bytes())),
        )
        .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    fn get(&self, name: &str) -> String {
        String::from_utf8(self.bytes(name)).unwrap()
    }

    pub(crate) fn bytes(&self, name: &str) -> Vec<u8> {
        let path = format!("/storage/v1/b/{}/o/{}?alt=media", self.0, encode(name));
        let reply = http(port(), "GET", &path, &[], None).unwrap();
        assert_eq!(reply.status, 200, "GET {name}: {}", reply.body);
        reply.raw
    }

    pub(crate) fn delete(&self, name: &str) {
        let path = format!("/storage/v1/b/{}/o/{}", self.0, encode(name));
        let reply = http(port(), "DELETE", &path, &[], None).unwrap();
        assert!(reply.status < 300 || reply.status == 404, "{}", reply.body);
    }

    /// Every object name in the bucket (staging ones too), sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let path = format!("/storage/v1/b/{}/o", self.0);
        let reply = http(port(), "GET", &path, &[], None).unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        let listing: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        let mut names: Vec<String> = listing["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// `sluice run job --json` with `env`: its summary, or a panic with its
/// stderr.
pub(crate) fn run_with(
    s: &Scratch,
    job: &str,
    env: &[(&'static str, String)],
) -> serde_json::Value {
    let out = s.sluice_env(&["run", job, "--json"], &refs(env));
    assert!(
        out.status.success(),
        "sluice run {job} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run(s: &Scratch, job: &str) -> serde_json::Value {
    run_with(s, job, &gcs_env())
}

fn run_err(s: &Scratch, job: &str) -> String {
    run_err_with(s, job, &gcs_env())
}

/// `sluice run job` with `env`, which must fail cleanly: its stderr.
pub(crate) fn run_err_with(s: &Scratch, job: &str, env: &[(&'static str, String)]) -> String {
    let out = s.sluice_env(&["run", job], &refs(env));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "should fail cleanly:\n{stderr}");
    stderr
}

fn orders_csv(rows: usize) -> String {
    let mut csv = String::from("id,name,amount\n");
    for i in 0..rows {
        csv.push_str(&format!("{i},name {i},{}.{}\n", i % 1000, i % 10));
    }
    csv
}

#[test]
fn local_csv_to_gcs_parquet_and_back() {
    let bucket = Bucket::new("roundtrip");
    let s = Scratch::new();
    s.write("in/orders.csv", orders_csv(10_000));
    s.write(
        "up.yaml",
        format!(
            "{GCS}source: {{plugin: file, grants: {{blob: ./in}}, config: {{paths: ['*.csv']}}}}\n\
             sink: {{plugin: file, grants: {{blob: '{}'}}, config: {{path: 'orders/{{task}}-{{part}}.parquet', max_rows_per_file: 4000}}}}\n",
            bucket.url("lake")
        ),
    );
    assert_eq!(rows(&run(&s, "up.yaml")), 10_000);
    // Published at commit; nothing left under the staging name.
    assert_eq!(
        bucket.names(),
        [
            "lake/orders/0-000.parquet",
            "lake/orders/0-001.parquet",
            "lake/orders/0-002.parquet"
        ]
    );
    // Parquet read back from GCS (footer and column chunks by ranged GETs).
    s.write(
        "down.yaml",
        format!(
            "{GCS}source: {{plugin: file, grants: {{blob: '{}'}}, config: {{paths: ['orders/*.parquet']}}}}\n\
             sink: {{plugin: file, grants: {{blob: ./back}}, config: {{path: 'orders.csv'}}}}\nexec: {{parallelism: 1}}\n",
            bucket.url("lake/")
        ),
    );
    assert_eq!(rows(&run(&s, "down.yaml")), 10_000);
    let back: String = std::fs::read_dir(s.path("back"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let mut ids: Vec<u64> = back
        .lines()
        .filter(|l| !l.starts_with("id,"))
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    ids.sort_unstable();
    assert!(
        ids == (0..10_000).collect::<Vec<_>>(),
        "{} rows back",
        ids.len()
    );
    assert!(back.contains("\n9999,name 9999,999.9\n"), "values survive");
}

#[test]
fn big_outputs_upload_in_resumable_chunks_and_read_back_in_ranges() {
    let bucket = Bucket::new("resumable");
    let s = Scratch::new();
    // ~20 MB of CSV: two full 8 MiB chunks and a last one.
    s.write(
        "gen.yaml",
        format!(
            "{GCS}source: {{plugin: generate, config: {{rows: 300000}}}}\n\
             sink: {{plugin: file, grants: {{blob: '{}'}}, config: {{path: 'big.csv'}}}}\nexec: {{parallelism: 1}}\n",
            bucket.url("")
        ),
    );
    assert_eq!(rows(&run(&s, "gen.yaml")), 300_000);
    let csv = bucket.get("big.csv");
    assert!(csv.len() > 16 << 20, "only {} bytes", csv.len());
    assert_eq!(csv.matches('\n').count(), 300_001);
    assert_eq!(bucket.names(), ["big.csv"]);
    // Read back in byte ranges of lines, in parallel.
    s.write(
        "read.yaml",
        format!(
            "{GCS}source: {{plugin: file, grants: {{blob: '{}'}}, config: {{paths: [big.csv], split_bytes: 5000000}}}}\n\
             sink: {{plugin: file, grants: {{blob: ./out}}, config: {{path: 'x.parquet'}}}}\n",
            bucket.url("")
        ),
    );
    let read = run(&s, "read.yaml");
    assert_eq!(rows(&read), 300_000);
    assert!(read["tasks"].as_u64().unwrap() >= 4, "{read}");
}

#[test]
fn a_failed_run_leaves_no_object_and_no_staged_one() {
    let bucket = Bucket::new("failed");
    let s = Scratch::new();
    // A bad value far into the file: the sink has sent chunks by then.
    let mut csv = orders_csv(400_000);
    csv.push_str("x,broken,not-a-number\n");
    s.write("in/orders.csv", csv);
    s.write(
        "j.yaml",
        format!(
            "{GCS}source: {{plugin: file, grants: {{blob: ./in}}, config: {{paths: ['*.csv'], columns: {{amount: float64}}}}}}\n\
             sink: {{plugin: file, grants: {{blob: '{}'}}, config: {{path: 'out.csv'}}}}\nexec: {{retries: 0}}\n",
            bucket.url("out")
        ),
    );
    let err = run_err(&s, "j.yaml");
    assert!(err.contains("orders.csv"), "{err}");
    assert!(bucket.names().is_empty(), "{:?}", bucket.names());
}

#[test]
fn a_committed_object_is_published_by_the_next_run() {
    let bucket = Bucket::new("rollforward");
    let s = Scratch::new();
    s.write(
        "j.yaml",
        format!(
            "{GCS}source: {{plugin: generate, config: {{rows: 400000, batch_size: 50000}}}}\n\
             sink: {{plugin: file, grants: {{blob: '{}'}}, config: {{path: 'part-{{part}}.csv'}}}}\n\
             exec: {{retries: 0, commit_every_rows: 100000}}\n",
            bucket.url("lake")
        ),
    );
    let mut env = gcs_env();
    env.push(("SLUICE_FAILPOINTS", "pipeline.before-publish@2".into()));
    // The second commit's state is saved; the process fails before it
    // publishes that commit's object.
    let out = s.sluice_env(&["run", "j.yaml"], &refs(&env));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = bucket.names();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with("lake/.sluice-staging/"), "{names:?}");
    assert_eq!(names[1], "lake/part-000.csv");
    // The next run publishes it from its staging name, and goes on.
    assert_eq!(rows(&run(&s, "j.yaml")), 200_000);
    let names = bucket.names();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        names.iter().all(|n| !n.contains(".sluice-staging")),
        "{names:?}"
    );
    let mut ids: Vec<u64> = Vec::new();
    for name in &names {
        ids.extend(
            bucket
                .get(name)
                .lines()
                .skip(1)
                .map(|l| l.split(',').next().unwrap().parse::<u64>().unwrap()),
        );
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..400_000).collect::<Vec<_>>());
}

#[test]
fn a_grant_is_scoped_to_its_prefix_and_hides_staging() {
    let bucket = Bucket::new("scoped");
    bucket.put("raw/a.csv", "id\n1\n");
    bucket.put("raw/.sluice-staging/0f", "id\n9\n");
    bucket.put("secret/pw.csv", "id\n2\n");
    let s = Scratch::new();
    let job = |paths: &str| {
        format!(
            "{GCS}source: {{plugin: file, grants: {{blob: '{}'}}, config: {{paths: {paths}}}}}\n\
             sink: {{plugin: file, grants: {{blob: ./out}}, config: {{path: 'o.csv'}}}}\n",
            bucket.url("raw/")
        )
    };
    s.write("all.yaml", job("['**']"));
    assert_eq!(rows(&run(&s, "all.yaml")), 1);
    for escape in ["['../secret/*.csv']", "['/secret/*.csv']"] {
        s.write("escape.yaml", job(escape));
        let err = run_err(&s, "escape.yaml");
        assert!(err.contains("leaves the granted root"), "{err}");
    }
}

#[test]
fn credentials_come_from_a_secret_and_bad_ones_fail_before_any_output() {
    let bucket = Bucket::new("creds");
    bucket.put("in/a.csv", "id\n1\n2\n");
    let s = Scratch::new();
    let key = service_account_key();
    let job = |credentials: &str| {
        format!(
            "secrets: {{gcp_credential: '${{env:GCP_CREDENTIAL}}'}}\n\
             gcs: {{endpoint: '${{env:GCS_ENDPOINT}}', credentials: '{credentials}'}}\n\
             source: {{plugin: file, grants: {{blob: '{}'}}, config: {{paths: ['*.csv']}}}}\n\
             sink: {{plugin: file, grants: {{blob: ./out}}, config: {{path: 'o.csv'}}}}\n",
            bucket.url("in")
        )
    };
    let mut env = gcs_env();
    env.push(("GCP_CREDENTIAL", key.to_string()));
    s.write("key.yaml", job("${secret:gcp_credential}"));
    assert_eq!(rows(&run_with(&s, "key.yaml", &env)), 2);

    // A key that is not one: named, never echoed.
    let mut broken = key.clone();
    broken["private_key"] =
        "-----BEGIN PRIVATE KEY-----\nSECRETBYTES\n-----END PRIVATE KEY-----\n".into();
    let mut env = gcs_env();
    env.push(("GCP_CREDENTIAL", broken.to_string()));
    let out = s.sluice_env(&["run", "key.yaml"], &refs(&env));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("source.grants.blob") && err.contains("credentials"),
        "{err}"
    );
    assert!(!err.contains("SECRETBYTES"), "{err}");

    env.push(("GCP_CREDENTIAL", key.to_string()));
    s.write("missing.yaml", job("${secret:nope}"));
    let err = run_err_with(&s, "missing.yaml", &env);
    assert!(err.contains("no secret named `nope`"), "{err}");
    s.write("word.yaml", job("somewhere"));
    let err = run_err_with(&s, "word.yaml", &env);
    assert!(err.contains("application_default, anonymous"), "{err}");
}

#[test]
fn a_missing_bucket_and_foreign_keys_fail_naming_the_grant() {
    let s = Scratch::new();
    s.write("in/a.csv", "id\n1\n");
    s.write(
        "missing.yaml",
        format!(
            "{GCS}source: {{plugin: file, grants: {{blob: ./in}}, config: {{paths: ['*.csv']}}}}\n\
             sink: {{plugin: file, grants: {{blob: 'gs://no-such-bucket-here/x/'}}, config: {{path: 'o.csv'}}}}\n"
        ),
    );
    let err = run_err(&s, "missing.yaml");
    assert!(
        err.contains("sink.grants.blob") && err.contains("not found"),
        "{err}"
    );
    s.write(
        "foreign.yaml",
        format!(
            "{GCS}source: {{plugin: file, grants: {{blob: ./in}}, config: {{paths: ['*.csv']}}}}\n\
             sink: {{plugin: file, grants: {{blob: {{url: 'gs://b/x/', region: eu-west-1}}}}, config: {{path: 'o.csv'}}}}\n"
        ),
    );
    let err = run_err(&s, "foreign.yaml");
    assert!(
        err.contains("`region` does not apply to gs://b/x/"),
        "{err}"
    );
}

/// A service-account key as `gcloud iam service-accounts keys create`
/// writes it, with a fresh RSA key: its tokens are signed here, offline.
pub(crate) fn service_account_key() -> serde_json::Value {
    let pem = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl makes a key");
    assert!(pem.status.success());
    serde_json::json!({
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "k1",
        "private_key": String::from_utf8(pem.stdout).unwrap(),
        "client_email": "sluice@test-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token"
    })
}

/// The emulator as an operator names it: `STORAGE_EMULATOR_HOST`.
fn emulator_env() -> Vec<(&'static str, String)> {
    vec![(
        "STORAGE_EMULATOR_HOST",
        endpoint().trim_start_matches("http://").to_string(),
    )]
}

#[test]
fn the_gcs_example_runs() {
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
    s.write(
        "logs-to-gcs.yaml",
        std::fs::read(examples.join("logs-to-gcs.yaml")).unwrap(),
    );
    let mut env = emulator_env();
    env.push(("LAKE_URL", bucket.url("lake/")));
    env.push(("GCP_CREDENTIAL", service_account_key().to_string()));
    let written = rows(&run_with(&s, "logs-to-gcs.yaml", &env));
    assert!(written > 0);
    let names = bucket.names();
    assert!(
        !names.is_empty()
            && names
                .iter()
                .all(|n| n.starts_with("lake/logs/") && n.ends_with(".parquet")),
        "{names:?}"
    );
}

#[test]
fn task_logs_and_a_plugin_registry_live_on_gcs() {
    let bucket = Bucket::new("fleet-files");
    let s = Scratch::new();
    s.write(
        "proj/flow.yaml",
        "tasks:\n  - {name: hello, echo: 'hello from a task on ${session_date}'}\n",
    );
    let mut env = emulator_env();
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
    let names = bucket.names();
    assert!(
        names.len() == 1 && names[0].starts_with("logs/1/") && names[0].ends_with(".1.log"),
        "{names:?}"
    );
    assert!(
        bucket
            .get(&names[0])
            .contains("hello from a task on 2026-12-02")
    );
    let logs = s.sluice_env(&["logs", "1"], &refs(&env));
    let printed = String::from_utf8_lossy(&logs.stdout);
    assert!(
        printed.contains("gs://") && printed.contains("hello from a task"),
        "{printed}"
    );

    // A registry under the same bucket: publish, install, run.
    let registry = bucket.url("plugins");
    env.push(("SLUICE_REGISTRY", registry.clone()));
    let generate = std::path::Path::new(env!("CARGO_BIN_EXE_sluice"))
        .parent()
        .unwrap()
        .join("plugins/source-generate.wasm");
    let out = s.sluice_env(
        &[
            "plugin",
            "publish",
            generate.to_str().unwrap(),
            "--unsigned",
        ],
        &refs(&env),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        bucket
            .names()
            .contains(&"plugins/index/generate.json".to_string())
    );
    let out = s.sluice_env(
        &["plugin", "install", "generate@^0.1", "--allow-unsigned"],
        &refs(&env),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lock = std::fs::read_to_string(s.path("sluice.lock")).unwrap();
    assert!(lock.contains(registry.trim_end_matches('/')), "{lock}");
    s.write(
        "job.yaml",
        "source:\n  plugin: generate@0.1\n  config: {rows: 50}\nsink:\n  plugin: file\n  grants: {blob: ./out}\n  config: {path: g.csv}\n",
    );
    assert_eq!(rows(&run_with(&s, "job.yaml", &env)), 50);
}
