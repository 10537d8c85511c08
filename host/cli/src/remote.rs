//! The fleet commands against a server's REST API (`--server` /
//! `SLUICE_SERVER`, with a token from `SLUICE_TOKEN`): what an operator's
//! laptop or a CI job uses, so it needs no database credentials — only a
//! token whose role the server checks.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sluice_api::{AttemptView, ScheduleView, TaskView};

use crate::fleet::{ScheduleCommand, SecretsCommand};
use crate::output;

/// A server's API, with the caller's token.
pub struct Remote {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Remote {
    /// The API at `server` (`https://sluice.example.com`).
    pub fn new(server: &str, token: Option<String>) -> Result<Remote> {
        let base = server.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--server {server:?}: give the API's URL, http:// or https://");
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Remote { base, token, http })
    }

    /// One request; the API's error shape becomes a readable error.
    async fn call(&self, method: Method, path: &str, body: Option<Body>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Some(Body::Json(value)) => request
                .header("content-type", "application/json")
                .body(value.to_string()),
            Some(Body::Gzip(bytes)) => request
                .header("content-type", "application/gzip")
                .body(bytes),
            None => request,
        };
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("{method} {url}: reading the answer"))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(value);
        }
        let code = value["error"]["code"].as_str().unwrap_or("error");
        let message = value["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        let hint = match status {
            StatusCode::UNAUTHORIZED => {
                " (set SLUICE_TOKEN to a token from `sluice admin token create`)"
            }
            StatusCode::FORBIDDEN => " (the token's role is too low for this)",
            _ => "",
        };
        bail!(
            "{method} {path}: {} {code}: {message}{hint}",
            status.as_u16()
        )
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.call(Method::POST, path, Some(Body::Json(body))).await
    }

    /// `sluice push`: the directory as a tar.gz, unpacked and checked by the server.
    pub async fn push(&self, dir: &Path, project: &str, revision: Option<&str>) -> Result<()> {
        let files = sluice_server::read_dir(dir)?;
        let archive = sluice_server::pack(&files).context("packing the project")?;
        let mut path = format!("/api/projects/{}/revisions", segment(project));
        if let Some(revision) = revision {
            path.push_str(&format!("?revision={}", segment(revision)));
        }
        let pushed = self
            .call(Method::POST, &path, Some(Body::Gzip(archive)))
            .await?;
        println!(
            "pushed {} files as project {project}, revision {} (id {}); workflows: {}",
            pushed["files"],
            text(&pushed["revision"]),
            pushed["revision_id"],
            join(&pushed["workflows"]),
        );
        Ok(())
    }

    /// `sluice start`.
    pub async fn start(
        &self,
        project: &str,
        workflow: &str,
        session: &str,
        params: BTreeMap<String, Value>,
        full_refresh: bool,
    ) -> Result<()> {
        let a = self
            .post(
                "/api/attempts",
                json!({"project": project, "workflow": workflow, "session": session,
                    "params": params, "full_refresh": full_refresh}),
            )
            .await?;
        println!(
            "started attempt {} of {project}/{workflow} (revision {}), session {}",
            a["id"],
            a["revision_id"],
            text(&a["session_time"])
        );
        Ok(())
    }

    /// `sluice attempts`.
    pub async fn attempts(
        &self,
        project: Option<&str>,
        workflow: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<()> {
        let mut query = vec![format!("limit={limit}")];
        query.extend(project.map(|p| format!("project={}", segment(p))));
        query.extend(workflow.map(|w| format!("workflow={}", segment(w))));
        query.extend(before.map(|b| format!("cursor={b}")));
        let page = self
            .get(&format!("/api/attempts?{}", query.join("&")))
            .await?;
        let attempts: Vec<AttemptView> = read("attempts", &page["items"])?;
        output::print_attempts(&attempts, page["next_cursor"].as_str());
        Ok(())
    }

    /// `sluice tasks`.
    pub async fn tasks(&self, attempt: i64) -> Result<()> {
        let list = self.get(&format!("/api/attempts/{attempt}/tasks")).await?;
        let tasks: Vec<TaskView> = read("tasks", &list["tasks"])?;
        output::print_tasks(&tasks);
        output::print_attempt_status(&read("attempt", &list["attempt"])?);
        Ok(())
    }

    /// `sluice logs`: each task's log, page by page.
    pub async fn logs(&self, attempt: i64, task: Option<&str>) -> Result<()> {
        let list = self.get(&format!("/api/attempts/{attempt}/tasks")).await?;
        let mut any = false;
        for t in list["tasks"].as_array().into_iter().flatten() {
            let name = text(&t["name"]);
            if task.is_some_and(|wanted| !name.contains(wanted)) {
                continue;
            }
            let mut offset = 0u64;
            let mut header = false;
            loop {
                let page = self
                    .get(&format!("/api/tasks/{}/log?offset={offset}", t["id"]))
                    .await?;
                let chunk = text(&page["text"]);
                if !header && (page["lease"].is_i64() || !chunk.is_empty()) {
                    println!("== {name} (lease {})", page["lease"]);
                    header = true;
                    any = true;
                }
                print!("{chunk}");
                let next = page["next_offset"].as_u64().unwrap_or(offset);
                if page["complete"].as_bool().unwrap_or(true) || next == offset {
                    break;
                }
                offset = next;
            }
        }
        if !any {
            println!("no logs for attempt {attempt}");
        }
        Ok(())
    }

    /// `sluice retry`.
    pub async fn retry(&self, attempt: i64, resume: bool, full_refresh: bool) -> Result<()> {
        let a = self
            .post(
                &format!("/api/attempts/{attempt}/retry"),
                json!({"resume": resume, "full_refresh": full_refresh}),
            )
            .await?;
        println!(
            "attempt {} retries attempt {attempt}{}",
            a["id"],
            if resume {
                " from its failed tasks"
            } else {
                " from scratch"
            }
        );
        Ok(())
    }

    /// `sluice kill`.
    pub async fn kill(&self, attempt: i64) -> Result<()> {
        let answer = self
            .post(&format!("/api/attempts/{attempt}/kill"), json!({}))
            .await?;
        if answer["kill_requested"].as_bool().unwrap_or(false) {
            println!(
                "attempt {attempt}: kill requested; running tasks stop at their next heartbeat"
            );
        } else {
            println!("attempt {attempt} is not running");
        }
        Ok(())
    }

    /// `sluice secrets …`: values go up, never come back.
    pub async fn secrets(&self, command: &SecretsCommand) -> Result<()> {
        match command {
            SecretsCommand::Set {
                project,
                name,
                value,
            } => {
                let value = crate::fleet::secret_value(value.as_deref())?;
                let path = format!(
                    "/api/projects/{}/secrets/{}",
                    segment(project),
                    segment(name)
                );
                self.call(
                    Method::PUT,
                    &path,
                    Some(Body::Json(json!({"value": value}))),
                )
                .await?;
                println!("secret {name} set for project {project}");
            }
            SecretsCommand::List { project } => {
                let page = self
                    .get(&format!(
                        "/api/projects/{}/secrets?limit=500",
                        segment(project)
                    ))
                    .await?;
                for s in items(&page) {
                    println!("{}\t(updated {})", text(&s["name"]), text(&s["updated_at"]));
                }
            }
            SecretsCommand::Delete { project, name } => {
                let path = format!(
                    "/api/projects/{}/secrets/{}",
                    segment(project),
                    segment(name)
                );
                self.call(Method::DELETE, &path, None).await?;
                println!("secret {name} deleted from project {project}");
            }
        }
        Ok(())
    }

    /// `sluice schedule …`.
    pub async fn schedule(&self, command: &ScheduleCommand) -> Result<()> {
        let at = |project: &str, workflow: &str, verb: &str| {
            format!(
                "/api/schedules/{}/{}/{verb}",
                segment(project),
                segment(workflow)
            )
        };
        match command {
            ScheduleCommand::List => {
                let page = self.get("/api/schedules?limit=500").await?;
                let schedules: Vec<ScheduleView> = read("schedules", &page["items"])?;
                output::print_schedules(&schedules);
            }
            ScheduleCommand::Enable { project, workflow } => {
                self.post(&at(project, workflow, "enable"), json!({}))
                    .await?;
                println!("{project}/{workflow} enabled");
            }
            ScheduleCommand::Disable { project, workflow } => {
                self.post(&at(project, workflow, "disable"), json!({}))
                    .await?;
                println!("{project}/{workflow} disabled");
            }
            ScheduleCommand::Backfill {
                project,
                workflow,
                from,
                to,
            } => {
                let done = self
                    .post(
                        &at(project, workflow, "backfill"),
                        json!({"from": from, "to": to}),
                    )
                    .await?;
                let started = done["started"].as_array().cloned().unwrap_or_default();
                for s in &started {
                    println!(
                        "attempt {} for {}",
                        s["attempt_id"],
                        text(&s["session_time"])
                    );
                }
                println!(
                    "backfill: {} sessions started, {} had run already",
                    started.len(),
                    done["existed"]
                );
            }
            ScheduleCommand::Skip {
                project,
                workflow,
                until,
            } => {
                let s = self
                    .post(&at(project, workflow, "skip"), json!({"until": until}))
                    .await?;
                println!(
                    "{project}/{workflow}: next run {}",
                    text(&s["next_run_time"])
                );
            }
        }
        Ok(())
    }
}

enum Body {
    Json(Value),
    Gzip(Vec<u8>),
}

/// Part of a response as the API's own view type.
fn read<T: DeserializeOwned>(what: &str, value: &Value) -> Result<T> {
    T::deserialize(value)
        .with_context(|| format!("the server's {what} are not what this sluice reads"))
}

fn items(page: &Value) -> impl Iterator<Item = &Value> {
    page["items"].as_array().into_iter().flatten()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn join(v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A name as one URL path segment or query value.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
