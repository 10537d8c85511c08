//! The REST API in process, on a real store (SQLite, and PostgreSQL when
//! `SLUICE_TEST_POSTGRES_URL` is set, as `cargo xtask test` does): every
//! route's protection read from the OpenAPI document, sign-in and its
//! refusals, the back-off, CSRF, pagination, and secrets that never leak.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use serde_json::{Value, json};
use sluice_api::{ApiConfig, ApiState, Role, create_token, put_user_record};
use sluice_store::{SecretKey, Store};
use tower::ServiceExt;

/// A secret key for the tests (64 hex digits).
const KEY: &str = "8f1d3c5a7b9e0f2d4c6b8a0e1f3d5c7b9a0e2f4d6c8b0a1e3f5d7c9b0a2e4f6d";

struct Api {
    router: Router,
    state: ApiState,
    _dir: tempfile::TempDir,
}

async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("state.db"))
        .await
        .unwrap();
    (store, dir)
}

/// A fresh database on the test PostgreSQL, if there is one.
async fn postgres_store(name: &str) -> Option<Store> {
    let Ok(base) = std::env::var("SLUICE_TEST_POSTGRES_URL") else {
        eprintln!("SLUICE_TEST_POSTGRES_URL is not set: the PostgreSQL half is skipped");
        return None;
    };
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
    Some(Store::open(&url).await.unwrap())
}

fn api_on(store: Store, dir: tempfile::TempDir, config: ApiConfig) -> Api {
    let state = ApiState::new(store, config, Some(SecretKey::parse(KEY).unwrap()));
    let (router, _) = sluice_api::router(state.clone());
    Api {
        router,
        state,
        _dir: dir,
    }
}

async fn new_api(config: ApiConfig) -> Api {
    let (store, dir) = sqlite_store().await;
    api_on(store, dir, config)
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text))
    }

    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn retry_after(&self) -> u64 {
        self.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

impl Api {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let body = match body {
            Some(v) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn token(&self, role: Role) -> String {
        create_token(&self.state, &format!("test-{role}"), role, None)
            .await
            .unwrap()
            .token
    }

    async fn as_token(&self, token: &str, method: &str, uri: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {token}");
        self.call(method, uri, &[("authorization", &auth)], body)
            .await
    }

    async fn login(&self, user: &str, password: &str, headers: &[(&str, &str)]) -> Reply {
        self.call(
            "POST",
            "/api/auth/login",
            headers,
            Some(json!({"user": user, "password": password})),
        )
        .await
    }

    /// Sign in; returns (cookie header value, CSRF token).
    async fn sign_in(&self, user: &str, password: &str) -> (String, String) {
        let r = self.login(user, password, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let set_cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        (cookie, r.json()["csrf_token"].as_str().unwrap().to_string())
    }

    async fn as_cookie(&self, cookie: &str, csrf: Option<&str>, method: &str, uri: &str) -> Reply {
        let mut headers = vec![("cookie", cookie)];
        if let Some(csrf) = csrf {
            headers.push(("x-csrf-token", csrf));
        }
        let body = (method == "POST").then(|| json!({"project": "nothing", "workflow": "w"}));
        self.call(method, uri, &headers, body).await
    }
}

/// Each operation of the OpenAPI document: (method, path, least role or
/// None when public).
fn operations(doc: &Value) -> Vec<(String, String, Option<Role>)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let role = op["security"].as_array().map(|reqs| {
                let scopes: Vec<Role> = reqs
                    .iter()
                    .flat_map(|r| r.as_object().unwrap().values())
                    .map(|s| Role::parse(s[0].as_str().unwrap()).unwrap())
                    .collect();
                assert!(
                    scopes.windows(2).all(|w| w[0] == w[1]),
                    "{method} {path}: its security schemes disagree on the role"
                );
                scopes[0]
            });
            out.push((method.to_uppercase(), path.clone(), role));
        }
    }
    out
}

/// A concrete URI for a templated path.
fn concrete(path: &str) -> String {
    // Ids no row has: an admin route must not revoke the tokens the test uses.
    path.replace("{id}", "999999")
        .replace("{project}", "p")
        .replace("{workflow}", "w")
        .replace("{name}", "n")
}

/// Routes anyone may call. Adding to this list is a decision, not a fix.
const PUBLIC: &[&str] = &["/api/auth/login", "/healthz", "/readyz"];

async fn every_route_is_protected(api: &Api) {
    let doc = api.call("GET", "/api/openapi.json", &[], None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.json();
    assert_eq!(
        doc["components"]["securitySchemes"]["token"]["scheme"],
        "bearer"
    );
    let ops = operations(&doc);
    assert!(ops.len() >= 30, "only {} operations documented", ops.len());
    let tokens: BTreeMap<Role, String> = [
        (Role::Viewer, api.token(Role::Viewer).await),
        (Role::Operator, api.token(Role::Operator).await),
        (Role::Admin, api.token(Role::Admin).await),
    ]
    .into_iter()
    .collect();
    for (method, path, role) in &ops {
        let uri = concrete(path);
        let body = (method != "GET" && method != "DELETE").then(|| json!({}));
        let Some(role) = role else {
            assert!(
                PUBLIC.contains(&path.as_str()),
                "{method} {path} has no security: every route but {PUBLIC:?} needs a role"
            );
            continue;
        };
        let anonymous = api.call(method, &uri, &[], body.clone()).await;
        assert_eq!(
            anonymous.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without credentials: {}",
            anonymous.text
        );
        assert_eq!(anonymous.code(), "unauthenticated", "{method} {path}");
        let forged = api
            .as_token("sluice_not-a-token", method, &uri, body.clone())
            .await;
        assert_eq!(
            forged.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a forged token"
        );
        for (have, token) in &tokens {
            let r = api.as_token(token, method, &uri, body.clone()).await;
            if have < role {
                assert_eq!(
                    r.status,
                    StatusCode::FORBIDDEN,
                    "{method} {path} as {have} (needs {role}): {}",
                    r.text
                );
                assert_eq!(r.code(), "forbidden");
            } else {
                assert!(
                    r.status != StatusCode::UNAUTHORIZED && r.status != StatusCode::FORBIDDEN,
                    "{method} {path} as {have} (needs {role}) was refused: {} {}",
                    r.status,
                    r.text
                );
                assert!(
                    !r.status.is_server_error(),
                    "{method} {path} as {have}: {} {}",
                    r.status,
                    r.text
                );
                if r.status.is_client_error() {
                    assert!(!r.code().is_empty(), "{method} {path}: one error shape");
                }
            }
        }
    }
}

#[tokio::test]
async fn every_route_answers_401_without_credentials_and_403_below_its_role() {
    every_route_is_protected(&new_api(ApiConfig::default()).await).await;
    if let Some(store) = postgres_store("sluice_api_routes").await {
        let dir = tempfile::tempdir().unwrap();
        every_route_is_protected(&api_on(store, dir, ApiConfig::default())).await;
    }
}

#[tokio::test]
async fn anonymous_access_is_off_unless_the_operator_turns_it_on() {
    let closed = new_api(ApiConfig::default()).await;
    let r = closed.call("GET", "/api/attempts", &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let open = new_api(ApiConfig {
        anonymous: Some(Role::Viewer),
        ..ApiConfig::default()
    })
    .await;
    let r = open.call("GET", "/api/attempts", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    let start = open
        .call(
            "POST",
            "/api/attempts",
            &[],
            Some(json!({"project": "p", "workflow": "w"})),
        )
        .await;
    assert_eq!(
        start.status,
        StatusCode::FORBIDDEN,
        "an anonymous viewer started something"
    );
}

async fn sign_in_refusals(api: &Api) {
    put_user_record(
        &api.state,
        "alice",
        "alice-password-1".into(),
        Role::Operator,
    )
    .await
    .unwrap();
    put_user_record(&api.state, "bob", "bob-password-22".into(), Role::Operator)
        .await
        .unwrap();

    let wrong = api.login("alice", "nope-nope-nope", &[]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());
    let unknown = api.login("mallory", "alice-password-1", &[]).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.json()["error"]["message"],
        unknown.json()["error"]["message"],
        "the refusal must not say whether the name exists"
    );

    let ok = api.login("alice", "alice-password-1", &[]).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let set_cookie = ok.headers[header::SET_COOKIE].to_str().unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let behind_tls = api
        .login(
            "alice",
            "alice-password-1",
            &[("x-forwarded-proto", "https")],
        )
        .await;
    let set_cookie = behind_tls.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");

    let (alice, alice_csrf) = api.sign_in("alice", "alice-password-1").await;
    let (_bob, bob_csrf) = api.sign_in("bob", "bob-password-22").await;
    let me = api.as_cookie(&alice, None, "GET", "/api/auth/me").await;
    assert_eq!(me.json()["user"], "alice");
    assert_eq!(me.json()["csrf_token"], alice_csrf.as_str());

    // A change made with the cookie: refused without the CSRF token, with a
    // wrong one, and with the token of another user's session.
    for csrf in [None, Some("forged"), Some(bob_csrf.as_str())] {
        let r = api.as_cookie(&alice, csrf, "POST", "/api/attempts").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{csrf:?}: {}", r.text);
        assert_eq!(r.code(), "csrf");
    }
    let r = api
        .as_cookie(&alice, Some(&alice_csrf), "POST", "/api/attempts")
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "with its token the request gets through: {}",
        r.text
    );

    // A cookie that is no session, and one after signing out.
    let forged = api
        .as_cookie("sluice_session=forged", None, "GET", "/api/auth/me")
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let out = api
        .as_cookie(&alice, Some(&alice_csrf), "POST", "/api/auth/logout")
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
    let after = api.as_cookie(&alice, None, "GET", "/api/auth/me").await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);

    // A new password signs the user out everywhere.
    let (bob, _) = api.sign_in("bob", "bob-password-22").await;
    put_user_record(&api.state, "bob", "bob-password-333".into(), Role::Viewer)
        .await
        .unwrap();
    let r = api.as_cookie(&bob, None, "GET", "/api/auth/me").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_in_refuses_wrong_passwords_unknown_users_csrf_less_changes_and_foreign_tokens() {
    sign_in_refusals(&new_api(ApiConfig::default()).await).await;
    if let Some(store) = postgres_store("sluice_api_sign_in").await {
        let dir = tempfile::tempdir().unwrap();
        sign_in_refusals(&api_on(store, dir, ApiConfig::default())).await;
    }
}

#[tokio::test]
async fn an_expired_session_is_refused() {
    let api = new_api(ApiConfig {
        session_ttl: Duration::from_millis(300),
        ..ApiConfig::default()
    })
    .await;
    put_user_record(&api.state, "carol", "carol-password-1".into(), Role::Viewer)
        .await
        .unwrap();
    let (cookie, _) = api.sign_in("carol", "carol-password-1").await;
    let r = api.as_cookie(&cookie, None, "GET", "/api/auth/me").await;
    assert_eq!(r.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = api.as_cookie(&cookie, None, "GET", "/api/auth/me").await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED);
    let message = late.json()["error"]["message"].to_string();
    assert!(message.contains("expired"), "{message}");
}

#[tokio::test]
async fn repeated_failed_sign_ins_lock_the_name_out_for_a_while() {
    let api = new_api(ApiConfig::default()).await;
    put_user_record(&api.state, "dave", "dave-password-1".into(), Role::Viewer)
        .await
        .unwrap();
    for _ in 0..3 {
        let r = api.login("dave", "wrong-password", &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right password is refused, with a time to wait.
    let locked = api.login("dave", "dave-password-1", &[]).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.text
    );
    assert_eq!(locked.code(), "locked");
    assert!((1..=2).contains(&locked.retry_after()));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // One more failure doubles the wait.
    let r = api.login("dave", "wrong-password", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let locked = api.login("dave", "dave-password-1", &[]).await;
    assert!(locked.retry_after() >= 2, "the back-off did not grow");
    // Unknown names lock the same way, so a lock says nothing about a name.
    for _ in 0..3 {
        api.login("ghost", "x", &[]).await;
    }
    let ghost = api.login("ghost", "x", &[]).await;
    assert_eq!(ghost.status, StatusCode::TOO_MANY_REQUESTS);
}

/// A project with one scheduled workflow, pushed as revision `r1`.
async fn push_demo(api: &Api) {
    let files: BTreeMap<String, String> = [(
        "hello.yaml".to_string(),
        "schedule: {daily: '07:00'}\ntasks:\n  - {name: hi, echo: hello}\n".to_string(),
    )]
    .into_iter()
    .collect();
    sluice_server::push_project(
        api.state.store(),
        "demo",
        "r1",
        files,
        sluice_server::now_ms(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn lists_page_by_cursor_filters_apply_and_operators_act() {
    let api = new_api(ApiConfig::default()).await;
    push_demo(&api).await;
    let op = api.token(Role::Operator).await;
    for day in 1..=5 {
        let start =
            json!({"project": "demo", "workflow": "hello", "session": format!("2026-01-0{day}")});
        let r = api
            .as_token(&op, "POST", "/api/attempts", Some(start))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(r.json()["status"], "running");
    }
    let mut seen = Vec::new();
    let mut uri = "/api/attempts?limit=2&project=demo".to_string();
    loop {
        let page = api.as_token(&op, "GET", &uri, None).await.json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|a| a["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/attempts?limit=2&project=demo&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, [5, 4, 3, 2, 1], "newest first, each once");
    let get = |uri: &'static str| api.as_token(&op, "GET", uri, None);
    let other = get("/api/attempts?project=other").await.json();
    assert_eq!(other["items"].as_array().unwrap().len(), 0);
    let done = get("/api/attempts?status=succeeded").await.json();
    assert_eq!(done["items"].as_array().unwrap().len(), 0);
    for bad in [
        "/api/attempts?status=sideways",
        "/api/attempts?limit=100000",
        "/api/attempts?cursor=zz",
        // PostgreSQL cannot hold a NUL: refused as input, never a 500.
        "/api/projects/demo/secrets?cursor=c%00",
        "/api/attempts?project=de%00mo",
    ] {
        let r = get(bad).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(r.code(), "invalid", "{bad}");
    }
    let bad = get("/api/attempts/abc").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.code(),
        "bad_request",
        "a framework refusal keeps the one error shape"
    );

    let sessions = get("/api/sessions?workflow=hello").await.json();
    assert_eq!(sessions["items"].as_array().unwrap().len(), 5);
    assert_eq!(
        sessions["items"][0]["session_time"],
        "2026-01-05T00:00:00.000Z"
    );
    let tasks = get("/api/attempts/5/tasks").await.json();
    let names: Vec<&str> = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.iter().any(|n| n.ends_with("hi")), "{names:?}");
    let workflows = get("/api/workflows").await.json();
    assert_eq!(workflows["items"][0]["name"], "hello");
    let next = workflows["items"][0]["next_run_time"].as_str().unwrap();
    assert!(next.ends_with("07:00:00.000Z"), "{next}");

    let kill = api
        .as_token(&op, "POST", "/api/attempts/5/kill", None)
        .await;
    assert_eq!(kill.json()["kill_requested"], true, "{}", kill.text);
    let running = api
        .as_token(
            &op,
            "POST",
            "/api/attempts/4/retry",
            Some(json!({"resume": true})),
        )
        .await;
    assert_eq!(
        running.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "retrying a running attempt: {}",
        running.text
    );
    let schedule = |action: &'static str, body: Option<Value>| {
        let uri = format!("/api/schedules/demo/hello/{action}");
        let op = op.clone();
        let api = &api;
        async move { api.as_token(&op, "POST", &uri, body).await.json() }
    };
    let disabled = schedule("disable", None).await;
    assert_eq!(disabled["enabled"], false);
    assert!(disabled["next_run_time"].is_null());
    assert_eq!(schedule("enable", None).await["enabled"], true);
    let range = json!({"from": "2026-01-01", "to": "2026-01-04"});
    let backfill = schedule("backfill", Some(range)).await;
    assert_eq!(
        backfill["started"].as_array().unwrap().len(),
        3,
        "{backfill}"
    );
}

#[tokio::test]
async fn secret_values_never_come_back() {
    const PLANTED: &str = "planted-Zq7-secret-value";
    let api = new_api(ApiConfig::default()).await;
    push_demo(&api).await;
    let admin = api.token(Role::Admin).await;
    let value = json!({"value": PLANTED});
    let set = api
        .as_token(
            &admin,
            "PUT",
            "/api/projects/demo/secrets/warehouse",
            Some(value.clone()),
        )
        .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.text);
    let bad_name = api
        .as_token(
            &admin,
            "PUT",
            "/api/projects/demo/secrets/bad%20name",
            Some(value),
        )
        .await;
    assert_eq!(bad_name.status, StatusCode::UNPROCESSABLE_ENTITY);
    let list = api
        .as_token(&admin, "GET", "/api/projects/demo/secrets", None)
        .await;
    assert_eq!(list.json()["items"][0]["name"], "warehouse");
    // Every GET route, as an admin: the value is in none of them.
    let doc = api.call("GET", "/api/openapi.json", &[], None).await.json();
    let mut bodies = vec![set.text, bad_name.text, list.text];
    for (method, path, _) in operations(&doc) {
        if method == "GET" {
            let uri = concrete(&path).replace("/p/", "/demo/");
            bodies.push(api.as_token(&admin, "GET", &uri, None).await.text);
        }
    }
    for body in &bodies {
        assert!(!body.contains(PLANTED), "the secret came back: {body}");
    }
    // It is stored, encrypted, for the workers.
    let key = SecretKey::parse(KEY).unwrap();
    let stored = api.state.store().secrets(&key, "demo").await.unwrap();
    assert_eq!(stored, [("warehouse".to_string(), PLANTED.to_string())]);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let api = new_api(ApiConfig::default()).await;
    let health = api.call("GET", "/healthz", &[], None).await;
    assert_eq!(
        (health.status, health.text.as_str()),
        (StatusCode::OK, "ok")
    );
    let ready = api.call("GET", "/readyz", &[], None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    let closed = api.call("GET", "/metrics", &[], None).await;
    assert_eq!(closed.status, StatusCode::UNAUTHORIZED);
    push_demo(&api).await;
    let viewer = api.token(Role::Viewer).await;
    let op = api.token(Role::Operator).await;
    let start = json!({"project": "demo", "workflow": "hello"});
    let attempt = api
        .as_token(&op, "POST", "/api/attempts", Some(start))
        .await
        .json();
    // Following the log of a task that has not run: with `wait_ms` the
    // answer waits for text that does not come, then says "not complete".
    let tasks = api
        .as_token(
            &viewer,
            "GET",
            &format!("/api/attempts/{}/tasks", attempt["id"]),
            None,
        )
        .await
        .json();
    let task = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["state"] == "ready")
        .unwrap_or_else(|| panic!("a ready task: {tasks}"))
        .clone();
    let t0 = std::time::Instant::now();
    let log = api
        .as_token(
            &viewer,
            "GET",
            &format!("/api/tasks/{}/log?wait_ms=600", task["id"]),
            None,
        )
        .await;
    assert!(
        t0.elapsed() >= std::time::Duration::from_millis(500),
        "it waited"
    );
    assert_eq!(log.status, StatusCode::OK, "{}", log.text);
    assert_eq!(log.json()["complete"], false);
    assert_eq!(log.json()["text"], "");
    let metrics = api.as_token(&viewer, "GET", "/metrics", None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.text.contains("# TYPE sluice_tasks gauge"),
        "{}",
        metrics.text
    );
    assert!(
        metrics.text.contains("sluice_queue_ready 1"),
        "{}",
        metrics.text
    );
    for line in [
        "sluice_running_task_retries 0",
        "sluice_running_task_lease_expiries 0",
        "sluice_workers_alive 0",
    ] {
        assert!(metrics.text.contains(line), "{line}: {}", metrics.text);
    }
    // What workers add is served as counters and histograms.
    let delta = |name: &str, labels: &str, value: f64| sluice_store::MetricDelta {
        name: name.into(),
        labels: labels.into(),
        value,
    };
    let read = r#"plugin="file",call="reader.next""#;
    api.state
        .store()
        .add_metric_totals(&[
            delta("sluice_tasks_succeeded_total", r#"kind="transfer""#, 3.0),
            delta(
                "sluice_plugin_rows_total",
                r#"plugin="file",stage="source""#,
                1500.0,
            ),
            delta(
                "sluice_plugin_call_seconds_bucket",
                &format!("{read},le=\"0.01\""),
                2.0,
            ),
            delta(
                "sluice_plugin_call_seconds_bucket",
                &format!("{read},le=\"+Inf\""),
                3.0,
            ),
            delta("sluice_plugin_call_seconds_sum", read, 0.75),
            delta("sluice_plugin_call_seconds_count", read, 3.0),
        ])
        .await
        .unwrap();
    let metrics = api.as_token(&viewer, "GET", "/metrics", None).await.text;
    for line in [
        "# TYPE sluice_tasks_succeeded_total counter",
        "sluice_tasks_succeeded_total{kind=\"transfer\"} 3",
        "sluice_plugin_rows_total{plugin=\"file\",stage=\"source\"} 1500",
        "# TYPE sluice_plugin_call_seconds histogram",
        "sluice_plugin_call_seconds_bucket{plugin=\"file\",call=\"reader.next\",le=\"0.01\"} 2\n\
         sluice_plugin_call_seconds_bucket{plugin=\"file\",call=\"reader.next\",le=\"+Inf\"} 3\n\
         sluice_plugin_call_seconds_sum{plugin=\"file\",call=\"reader.next\"} 0.75\n\
         sluice_plugin_call_seconds_count{plugin=\"file\",call=\"reader.next\"} 3\n",
    ] {
        assert!(metrics.contains(line), "{line}: {metrics}");
    }
    let public = new_api(ApiConfig {
        metrics_public: true,
        ..ApiConfig::default()
    })
    .await;
    let open = public.call("GET", "/metrics", &[], None).await;
    assert_eq!(open.status, StatusCode::OK);
}
