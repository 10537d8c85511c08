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
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
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
        _ => respond(&mut conn, "404 Not Found", "", b""),
    }
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
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
