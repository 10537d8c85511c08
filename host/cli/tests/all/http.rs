//! The `http` grant, end to end: a test plugin (`http-probe`) GETs URLs
//! through `wasi:http`; a local fixture server answers. The grant decides
//! what reaches the server, what comes back, and which secrets go along.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::*;

/// A local HTTP server with a few behaviours, on a free port.
struct Fixture {
    port: u16,
}

impl Fixture {
    fn start() -> Fixture {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let flaky = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let flaky = flaky.clone();
                std::thread::spawn(move || serve(conn, port, &flaky));
            }
        });
        Fixture { port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn serve(conn: TcpStream, port: u16, flaky: &AtomicUsize) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (path, query) = (path.to_string(), query.to_string());
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    let mut auth = String::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
            break;
        }
        if let Some(v) = header.to_ascii_lowercase().strip_prefix("authorization:") {
            auth = header[header.len() - v.len()..].trim().to_string();
        }
    }
    let mut conn = conn;
    let respond = |conn: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
            body.len()
        );
        let _ = conn.write_all(body);
    };
    match path.as_str() {
        "/ok" => respond(&mut conn, "200 OK", "", b"hello"),
        "/echo-auth" => respond(&mut conn, "200 OK", "", auth.as_bytes()),
        "/flaky" => {
            if flaky.fetch_add(1, Ordering::SeqCst) == 0 {
                respond(&mut conn, "500 Internal Server Error", "", b"try again")
            } else {
                respond(&mut conn, "200 OK", "", b"better")
            }
        }
        "/big" => respond(&mut conn, "200 OK", "", &vec![b'x'; 3 << 20]),
        "/big-unsized" => {
            // No Content-Length: the cap must cut the stream itself.
            let _ = write!(conn, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            for _ in 0..48 {
                if conn.write_all(&[b'y'; 64 << 10]).is_err() {
                    break;
                }
            }
        }
        "/redirect-away" => respond(
            &mut conn,
            "302 Found",
            &format!("Location: http://localhost:{port}/ok\r\n"),
            b"",
        ),
        "/slow" => {
            std::thread::sleep(std::time::Duration::from_secs(4));
            respond(&mut conn, "200 OK", "", b"late");
        }
        p if p.starts_with("/api/") => api(&mut conn, p, &param, &auth, flaky, &respond),
        _ => respond(&mut conn, "404 Not Found", "", b""),
    }
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
}

/// Six records, `updated_at` one day apart.
fn record(id: u64) -> serde_json::Value {
    serde_json::json!({"id": id, "name": format!("n{id}"), "updated_at": format!("2024-01-0{id}T00:00:00Z")})
}

/// With the right bearer token: the `updated_since` asked for and the
/// records updated after it.
fn updated_since(
    param: &dyn Fn(&str) -> Option<String>,
    auth: &str,
) -> Option<(Option<String>, Vec<serde_json::Value>)> {
    if auth != "Bearer s3cr3t-value" {
        return None;
    }
    let since = param("updated_since").map(|s| s.replace("%3A", ":"));
    let rows = (1..=6)
        .map(record)
        .filter(|r| {
            since
                .as_deref()
                .is_none_or(|s| r["updated_at"].as_str().unwrap() > s)
        })
        .collect();
    Some((since, rows))
}

type Respond = dyn Fn(&mut TcpStream, &str, &str, &[u8]);

/// A REST API paginated every way the `http` source supports.
fn api(
    conn: &mut TcpStream,
    path: &str,
    param: &dyn Fn(&str) -> Option<String>,
    auth: &str,
    flaky: &AtomicUsize,
    respond: &Respond,
) {
    let json = |conn: &mut TcpStream, v: serde_json::Value, extra: &str| {
        respond(conn, "200 OK", extra, v.to_string().as_bytes())
    };
    let page_of = |n: u64| -> Vec<serde_json::Value> {
        (1..=6)
            .skip(((n - 1) * 2) as usize)
            .take(2)
            .map(record)
            .collect()
    };
    match path {
        "/api/page" => {
            let n: u64 = param("page").unwrap().parse().unwrap();
            json(conn, serde_json::json!({"data": page_of(n)}), "")
        }
        "/api/cursor" => {
            let n: u64 = param("cursor").map_or(1, |c| c.trim_start_matches('c').parse().unwrap());
            let next = if n < 3 {
                serde_json::json!(format!("c{}", n + 1))
            } else {
                serde_json::Value::Null
            };
            json(
                conn,
                serde_json::json!({"items": page_of(n), "meta": {"next": next}}),
                "",
            )
        }
        "/api/offset" => {
            let offset: usize = param("offset").unwrap().parse().unwrap();
            let limit: usize = param("limit").unwrap().parse().unwrap();
            let rows: Vec<_> = (1..=5).skip(offset).take(limit).map(record).collect();
            json(conn, serde_json::json!(rows), "")
        }
        "/api/next" => {
            let n: u64 = param("p").map_or(1, |p| p.parse().unwrap());
            let next = if n < 3 {
                serde_json::json!(format!("/api/next?p={}", n + 1))
            } else {
                serde_json::Value::Null
            };
            json(
                conn,
                serde_json::json!({"data": page_of(n), "links": {"next": next}}),
                "",
            )
        }
        "/api/link" => {
            let n: u64 = param("p").map_or(1, |p| p.parse().unwrap());
            let link = if n < 3 {
                format!("Link: </api/link?p={}>; rel=\"next\"\r\n", n + 1)
            } else {
                String::new()
            };
            json(conn, serde_json::json!(page_of(n)), &link)
        }
        "/api/busy" => {
            // 429, then a 503, then the records.
            match flaky.fetch_add(1, Ordering::SeqCst) {
                0 => respond(conn, "429 Too Many Requests", "Retry-After: 1\r\n", b""),
                1 => respond(conn, "503 Service Unavailable", "", b"busy"),
                _ => json(conn, serde_json::json!({"data": page_of(1)}), ""),
            }
        }
        p if p.starts_with("/api/changes/since/") => {
            let since = p["/api/changes/since/".len()..].replace("%3A", ":");
            let rows: Vec<_> = (1..=6)
                .map(record)
                .filter(|r| since.is_empty() || r["updated_at"].as_str().unwrap() > since.as_str())
                .collect();
            json(conn, serde_json::json!(rows), "")
        }
        "/api/down" => respond(conn, "500 Internal Server Error", "", b"down for good"),
        "/api/orders" => {
            // Next links, a bearer token and `updated_since`, as the example expects.
            let Some((since, rows)) = updated_since(param, auth) else {
                return respond(conn, "401 Unauthorized", "", b"who are you");
            };
            let n: usize = param("p").map_or(0, |p| p.parse().unwrap());
            let page: Vec<_> = rows.iter().skip(n * 2).take(2).cloned().collect();
            let next = if rows.len() > (n + 1) * 2 {
                let since = since
                    .map(|s| format!("&updated_since={s}"))
                    .unwrap_or_default();
                serde_json::json!(format!("/api/orders?p={}{since}", n + 1))
            } else {
                serde_json::Value::Null
            };
            json(
                conn,
                serde_json::json!({"data": page, "links": {"next": next}}),
                "",
            )
        }
        "/api/since" => {
            let Some((_, rows)) = updated_since(param, auth) else {
                return respond(conn, "401 Unauthorized", "", b"who are you");
            };
            json(conn, serde_json::json!({"data": rows}), "")
        }
        _ => respond(conn, "404 Not Found", "", b""),
    }
}

fn probe_job(grants: &str, urls: &[String], headers: &str) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("'{u}'")).collect();
    format!(
        "secrets:\n  token: '${{env:API_TOKEN}}'\n\
         source:\n  plugin: {}/source-http-probe.wasm\n  grants: {grants}\n  config: {{urls: [{}], headers: {headers}}}\n\
         sink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: probe.jsonl, mode: overwrite}}\n",
        std::env::var("SLUICE_TEST_PLUGIN_DIR")
            .expect("SLUICE_TEST_PLUGIN_DIR: run through cargo xtask test"),
        urls.join(", ")
    )
}

/// The probe's rows, by URL.
fn rows_by_url(s: &Scratch) -> Vec<serde_json::Value> {
    std::fs::read_to_string(s.path("out/probe.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_http_grant_limits_hosts_size_and_time_and_injects_secrets() {
    let server = Fixture::start();
    let s = Scratch::new();
    let urls = [
        server.url("/ok"),
        server.url("/echo-auth"),
        format!("http://localhost:{}/ok", server.port),
        server.url("/redirect-away"),
        server.url("/big"),
        server.url("/big-unsized"),
        server.url("/slow"),
        server.url("/flaky"),
        server.url("/flaky"),
    ];
    s.write(
        "j.yaml",
        probe_job(
            &format!(
                "{{http: {{hosts: ['127.0.0.1:{}'], timeout: 1, max_response_mb: 1}}, secrets: [token]}}",
                server.port
            ),
            &urls,
            "{Authorization: 'Bearer ${secret:token}'}",
        ),
    );
    let out = s.sluice_env(
        &["run", "j.yaml", "--json"],
        &[("API_TOKEN", "s3cr3t-value")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("s3cr3t-value"), "{stderr}");
    let rows = rows_by_url(&s);
    let row = |i: usize| &rows[i];
    assert_eq!(row(0)["status"], 200);
    assert_eq!(row(0)["body"], "hello");
    // The plugin sent the placeholder; the server got the secret.
    assert_eq!(row(1)["body"], "Bearer s3cr3t-value");
    // Another host name for the same server is not granted.
    assert!(
        row(2)["error"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied"),
        "{}",
        row(2)
    );
    // A redirect is only a response: following it would be a new request
    // to a host the grant does not name.
    assert_eq!(row(3)["status"], 302);
    // Over the 1 MiB cap: refused by its Content-Length, or cut off.
    assert!(
        row(4)["error"]
            .as_str()
            .unwrap()
            .contains("HttpResponseBodySize"),
        "{}",
        row(4)
    );
    assert!(row(5)["error"].is_string(), "{}", row(5));
    assert!(
        row(6)["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("timeout"),
        "{}",
        row(6)
    );
    assert_eq!(row(7)["status"], 500);
    assert_eq!(row(8)["status"], 200);
    assert_eq!(row(8)["body"], "better");
    // The job file never held the value, and neither did the plugin's config.
    assert!(
        !std::fs::read_to_string(s.path("j.yaml"))
            .unwrap()
            .contains("s3cr3t")
    );
}

#[test]
fn without_a_grant_no_request_leaves_and_secrets_need_their_grant() {
    let server = Fixture::start();
    let s = Scratch::new();
    s.write("none.yaml", probe_job("{}", &[server.url("/ok")], "{}"));
    let out = s.sluice_env(&["run", "none.yaml"], &[("API_TOKEN", "x")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        rows_by_url(&s)[0]["error"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied")
    );
    // A header naming a secret the plugin was not granted.
    s.write(
        "other.yaml",
        probe_job(
            &format!("{{http: {{hosts: ['127.0.0.1:{}']}}}}", server.port),
            &[server.url("/echo-auth")],
            "{Authorization: '${secret:token}'}",
        ),
    );
    let out = s.sluice_env(&["run", "other.yaml"], &[("API_TOKEN", "x")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let error = rows_by_url(&s)[0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("secret `token` is not granted"), "{error}");
    // Secrets without HTTP, or an undeclared secret, are job errors.
    s.write(
        "bad.yaml",
        probe_job("{secrets: [token]}", &[server.url("/ok")], "{}"),
    );
    let run_err = |job: &str| {
        let out = s.sluice_env(&["run", job], &[("API_TOKEN", "x")]);
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run_err("bad.yaml");
    assert!(err.contains("grants.secrets"), "{err}");
    s.write(
        "undeclared.yaml",
        probe_job(
            &format!(
                "{{http: {{hosts: ['127.0.0.1:{}']}}, secrets: [nope]}}",
                server.port
            ),
            &[server.url("/ok")],
            "{}",
        ),
    );
    let err = run_err("undeclared.yaml");
    assert!(err.contains("no secret named `nope`"), "{err}");
}

fn api_job(server: &Fixture, config: &str, out: &str) -> String {
    format!(
        "secrets:\n  token: '${{env:API_TOKEN}}'\n\
         source:\n  plugin: http\n  grants: {{http: {{hosts: ['127.0.0.1:{}'], timeout: 5}}, secrets: [token]}}\n  config: {config}\n\
         sink:\n  plugin: file\n  grants: {{blob: ./out}}\n  config: {{path: '{out}'}}\n",
        server.port
    )
}

/// The ids in a JSON Lines output file.
fn ids(s: &Scratch, file: &str) -> Vec<u64> {
    std::fs::read_to_string(s.path(&format!("out/{file}")))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn the_http_source_follows_every_kind_of_pagination() {
    let server = Fixture::start();
    let s = Scratch::new();
    let url = |p: &str| server.url(p);
    for (name, config, expected) in [
        (
            "page",
            format!(
                "{{url: '{}', records: data, pagination: {{type: page, param: page}}}}",
                url("/api/page")
            ),
            6,
        ),
        (
            "cursor",
            format!(
                "{{url: '{}', records: items, pagination: {{type: cursor, path: meta.next, param: cursor}}}}",
                url("/api/cursor")
            ),
            6,
        ),
        (
            "offset",
            format!(
                "{{url: '{}', pagination: {{type: offset, param: offset, limit: 2, limit_param: limit}}}}",
                url("/api/offset")
            ),
            5,
        ),
        (
            "next",
            format!(
                "{{url: '{}', records: data, pagination: {{type: next_link, path: links.next}}}}",
                url("/api/next")
            ),
            6,
        ),
        (
            "link",
            format!(
                "{{url: '{}', pagination: {{type: link_header}}}}",
                url("/api/link")
            ),
            6,
        ),
        (
            "busy",
            format!(
                "{{url: '{}', records: data, backoff_ms: 50}}",
                url("/api/busy")
            ),
            2,
        ),
        (
            "capped",
            format!(
                "{{url: '{}', records: data, pagination: {{type: page, param: page}}, max_pages: 2}}",
                url("/api/page")
            ),
            4,
        ),
    ] {
        s.write(
            &format!("{name}.yaml"),
            api_job(&server, &config, &format!("{name}.jsonl")),
        );
        let out = s.sluice_env(
            &["run", &format!("{name}.yaml"), "--json"],
            &[("API_TOKEN", "s3cr3t-value")],
        );
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = ids(&s, &format!("{name}.jsonl"));
        assert_eq!(got, (1..=expected).collect::<Vec<u64>>(), "{name}");
    }
    // The retries were logged, with the status that caused them.
    let out = s.sluice_env(
        &["run", "busy.yaml", "--full-refresh"],
        &[("API_TOKEN", "x")],
    );
    assert!(out.status.success());
    // Types: inferred from the first page, overridden by `columns`.
    let line = std::fs::read_to_string(s.path("out/page.jsonl")).unwrap();
    assert!(
        line.starts_with(r#"{"id":1,"name":"n1","updated_at":"2024-01-01T00:00:00Z"}"#),
        "{line}"
    );
}

#[test]
fn the_http_source_is_incremental_and_fails_clearly() {
    let server = Fixture::start();
    let s = Scratch::new();
    s.write(
        "since.yaml",
        api_job(
            &server,
            &format!(
                "{{url: '{}', records: data, headers: {{Authorization: 'Bearer ${{secret:token}}'}}, incremental: {{field: updated_at, param: updated_since}}}}",
                server.url("/api/since")
            ),
            "since-{task}.jsonl",
        ),
    );
    let env = [("API_TOKEN", "s3cr3t-value")];
    let run = |job: &str| {
        let out = s.sluice_env(&["run", job, "--json"], &env);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        rows(&serde_json::from_slice(&out.stdout).unwrap())
    };
    assert_eq!(run("since.yaml"), 6);
    // The saved cursor is the largest updated_at: nothing newer yet.
    assert_eq!(run("since.yaml"), 0);
    // The cursor in the URL's path instead of a parameter.
    s.write(
        "path.yaml",
        api_job(
            &server,
            &format!(
                "{{url: '{}', incremental: {{field: updated_at, start: '2024-01-04T00:00:00Z'}}}}",
                server.url("/api/changes/since/{cursor}")
            ),
            "path-{task}.jsonl",
        ),
    );
    assert_eq!(run("path.yaml"), 2);
    assert_eq!(run("path.yaml"), 0);
    // A wrong token: the server's 401 is an auth error naming the URL.
    let out = s.sluice_env(
        &["run", "since.yaml", "--full-refresh"],
        &[("API_TOKEN", "wrong")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("/api/since"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong"), "{stderr}");
    // A server that stays down: retried, then a clear error.
    s.write(
        "down.yaml",
        api_job(
            &server,
            &format!(
                "{{url: '{}', retries: 2, backoff_ms: 10}}",
                server.url("/api/down")
            ),
            "down.jsonl",
        ),
    );
    let out = s.sluice_env(&["run", "down.yaml"], &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("HTTP 500: down for good"), "{stderr}");
    assert!(!s.path("out/down.jsonl").exists());
    // A host not granted: a config error saying what to add.
    s.write(
        "elsewhere.yaml",
        api_job(
            &server,
            &format!(
                "{{url: 'http://localhost:{}/api/page?page=1', records: data}}",
                server.port
            ),
            "x.jsonl",
        ),
    );
    let out = s.sluice_env(&["run", "elsewhere.yaml"], &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("grants.http.hosts"), "{stderr}");
}

/// What the REST examples read from the environment: the fixture's API,
/// its host, and the token it accepts.
struct ExampleEnv {
    base: String,
    host: String,
}

impl ExampleEnv {
    fn of(server: &Fixture) -> ExampleEnv {
        let host = format!("127.0.0.1:{}", server.port);
        ExampleEnv {
            base: format!("http://{host}/api"),
            host,
        }
    }

    fn vars(&self) -> [(&str, &str); 3] {
        [
            ("API_BASE", self.base.as_str()),
            ("API_HOST", self.host.as_str()),
            ("API_TOKEN", "s3cr3t-value"),
        ]
    }
}

/// Run `job`, which must succeed; the rows it moved.
fn run_rows(s: &Scratch, job: &str, env: &[(&str, &str)]) -> u64 {
    let out = s.sluice_env(&["run", job, "--json"], env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rows(&serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn rest_example_runs() {
    let server = Fixture::start();
    let s = Scratch::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/rest-to-parquet.yaml");
    s.write("rest.yaml", std::fs::read(example).unwrap());
    let env = ExampleEnv::of(&server);
    let run = || run_rows(&s, "rest.yaml", &env.vars());
    assert_eq!(run(), 6);
    assert_eq!(run(), 0);
    let file = std::fs::read_dir(s.path("out"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let batch = concat(&read_parquet(&file));
    assert_eq!(batch.num_rows(), 6);
    assert_eq!(
        batch.schema().field_with_name("id").unwrap().data_type(),
        &arrow::datatypes::DataType::Int64
    );
}

#[test]
fn the_rest_example_in_python_and_javascript_pages_with_a_secret_resumes_and_needs_its_grant() {
    for (rel, name) in [
        ("examples/plugins/python-orders", "python-orders"),
        ("tests/sdk-plugins/js-orders", "js-orders"),
    ] {
        a_rest_source_pages_with_a_secret_resumes_and_needs_its_grant(rel, name);
    }
}

/// The Python example's job, run with the plugin at `rel` (`name`).
fn a_rest_source_pages_with_a_secret_resumes_and_needs_its_grant(rel: &str, name: &str) {
    let plugin = sdk_plugin(rel);
    let server = Fixture::start();
    let s = Scratch::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/python-orders-to-parquet.yaml");
    let job = std::fs::read_to_string(example).unwrap().replace(
        "./plugins/python-orders/target/sluice/python-orders.wasm",
        plugin.to_str().unwrap(),
    );
    s.write("orders.yaml", &job);
    let env = ExampleEnv::of(&server);
    let run = || run_rows(&s, "orders.yaml", &env.vars());
    assert_eq!(run(), 6);
    assert_eq!(run(), 0);
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(s.path("out")).unwrap() {
        for batch in read_parquet(&entry.unwrap().path()) {
            let col = batch.column_by_name("id").unwrap();
            let col = col
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap();
            ids.extend(col.values().iter().copied());
        }
    }
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);

    // A wrong token: the API's 401 is an auth error, never retried.
    let mut wrong = env.vars();
    wrong[2] = ("API_TOKEN", "wrong");
    s.write(
        "fresh.yaml",
        job.replace("name: python-orders-to-parquet", "name: fresh"),
    );
    let out = s.sluice_env(&["run", "fresh.yaml"], &wrong);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("auth") && stderr.contains("401"),
        "{stderr}"
    );

    // Without the http grant no request leaves the sandbox.
    let ungranted = job
        .replace("name: python-orders-to-parquet", "name: ungranted")
        .replace(
            "    http: {hosts: [\"${env:API_HOST}\"], timeout: 30}\n",
            "",
        )
        .replace(
            "  grants:\n    secrets: [api_token]                  # the plugin sends ${secret:api_token}\n",
            "",
        );
    s.write("ungranted.yaml", ungranted);
    let out = s.sluice_env(&["run", "ungranted.yaml"], &env.vars());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(name) && stderr.contains("grants.http.hosts"),
        "{stderr}"
    );
}
