//! The workflow file format.
//!
//! ```yaml
//! timezone: Asia/Tokyo
//! schedule: { daily: "07:00" }
//! params: { bucket: raw }
//! tasks:
//!   - name: load
//!     transfer: jobs/orders.yaml
//!   - name: regions
//!     for_each: { region: [jp, us, eu] }
//!     parallel: 2
//!     do:
//!       - name: export
//!         transfer: jobs/export.yaml
//!   - name: per_customer
//!     for_each_row:
//!       url: ${secret:warehouse_url}
//!       query: SELECT id AS customer, region FROM customers WHERE active
//!     parallel: 4
//!     do:
//!       - name: export
//!         transfer: jobs/customer.yaml
//!   - name: tell
//!     http: { url: "https://hooks.example.com/x", body: "done ${session_date}" }
//! on_error:
//!   - name: alert
//!     http: { url: "https://hooks.example.com/alert" }
//! ```

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A parsed workflow file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// The workflow's name; default: the file's stem.
    #[serde(default)]
    pub name: Option<String>,
    /// Time zone of session times and schedules (IANA name); default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    /// When it runs by itself.
    #[serde(default)]
    pub schedule: Option<ScheduleSpec>,
    /// Parameters every task sees as `${name}`.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Default retry policy of every task.
    #[serde(default)]
    pub retry: Option<Retry>,
    /// Run the top-level tasks in parallel (`true`, or at most N at once).
    #[serde(default)]
    pub parallel: Option<Parallel>,
    /// At most this many of this workflow's tasks run at once, across all
    /// its sessions and every worker (a backfill of 30 days does not take
    /// the whole fleet, or a source database's every connection).
    #[serde(default)]
    pub max_running: Option<u32>,
    /// The tasks, in order.
    pub tasks: Vec<TaskDef>,
    /// Tasks to run when any task fails.
    #[serde(default)]
    pub on_error: Vec<TaskDef>,
}

/// One task: exactly one of `transfer`, `call`, `http`, `sh`, `echo`,
/// `tasks` (a group), `for_each` + `do` or `for_each_row` + `do`.
///
/// It serializes too: a `for_each_row` task carries its `do` tasks into the
/// queue, to be expanded when the rows are known.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDef {
    /// Unique among its siblings.
    pub name: String,
    /// A job: a file path (relative to the workflow file) or the job inline.
    #[serde(default)]
    pub transfer: Option<Value>,
    /// A transfer that ignores its saved state and reads everything again,
    /// every time it runs (what `sluice start --full-refresh` does for one
    /// attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_refresh: Option<bool>,
    /// Another workflow file, run as a group here.
    #[serde(default)]
    pub call: Option<String>,
    /// An HTTP request: `{url, method, headers, body, timeout}`.
    #[serde(default)]
    pub http: Option<Value>,
    /// A shell command (only where the server allows it).
    #[serde(default)]
    pub sh: Option<Value>,
    /// A line for the task log: the smallest task there is.
    #[serde(default)]
    pub echo: Option<Value>,
    /// Subtasks: this task is a group.
    #[serde(default)]
    pub tasks: Option<Vec<TaskDef>>,
    /// Loop variables: `{region: [jp, us]}`; several make a product (in
    /// the order of their names).
    #[serde(default)]
    pub for_each: Option<Value>,
    /// A loop over the rows of a query, run when the loop is reached (so
    /// it sees what the tasks before it wrote): each row's columns are the
    /// round's variables.
    #[serde(default)]
    pub for_each_row: Option<RowSource>,
    /// The tasks run for each value of the loop.
    #[serde(default, rename = "do")]
    pub do_tasks: Option<Vec<TaskDef>>,
    /// Run the subtasks (or loop rounds) in parallel: `true`, or N at once.
    #[serde(default)]
    pub parallel: Option<Parallel>,
    /// Run only when this holds (after templating).
    #[serde(default, rename = "if")]
    pub if_: Option<Value>,
    /// Retry policy.
    #[serde(default)]
    pub retry: Option<Retry>,
    /// Tasks to run when this one (or anything inside it) fails.
    #[serde(default)]
    pub on_error: Vec<TaskDef>,
    /// Parameters for this task and everything inside it.
    #[serde(default)]
    pub params: Map<String, Value>,
}

/// Where `for_each_row` gets its rows.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RowSource {
    /// The database: `postgres://…` or `mysql://…`, usually
    /// `${secret:name}` (filled in by the worker, never stored).
    pub url: String,
    /// A query; its column names become the round's variables.
    pub query: String,
    /// More rows than this fail the task instead of flooding the queue.
    #[serde(default = "default_max_rows")]
    pub max_rows: u32,
}

fn default_max_rows() -> u32 {
    10_000
}

/// `parallel: true` or `parallel: N`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Parallel {
    /// All at once (true) or in order (false).
    All(bool),
    /// At most N at once.
    Limit(u32),
}

/// `retry: 3` or `retry: {limit: 3, interval: 10s, backoff: exponential}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Retry {
    /// Just a limit, retried at once.
    Limit(u32),
    /// The full policy.
    Policy {
        /// Retries after the first failure.
        limit: u32,
        /// Wait before a retry: `10s`, `500ms`, `2m`, or seconds.
        #[serde(default)]
        interval: Option<Value>,
        /// `exponential` doubles the wait each time; default constant.
        #[serde(default)]
        backoff: Option<String>,
    },
}

/// When a workflow runs by itself; exactly one of the timing keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// A cron line (`"0 7 * * 1-5"`), in the workflow's time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Every day at `HH:MM` (or `HH:MM:SS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<String>,
    /// Every hour at `MM:SS` (or `MM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly: Option<String>,
    /// Every N minutes, from midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes_interval: Option<u32>,
    /// Skip a time while the previous session still runs.
    #[serde(default)]
    pub skip_on_overtime: bool,
    /// The time zone, filled from the workflow's.
    #[serde(default)]
    pub timezone: String,
}

impl Workflow {
    /// Read and parse a workflow file.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the file and the line or path in it.
    pub fn load(path: &Path) -> Result<Workflow> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Invalid {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    /// Parse workflow text; `path` names it in errors and gives the default name.
    ///
    /// # Errors
    /// As [`Workflow::load`].
    pub fn parse(text: &str, path: &Path) -> Result<Workflow> {
        let file = path.display().to_string();
        let err = |message: String| Error::Invalid {
            file: file.clone(),
            message,
        };
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
            err(match e.location() {
                Some(l) => format!("line {}, column {}: {e}", l.line(), l.column()),
                None => e.to_string(),
            })
        })?;
        let mut wf: Workflow = serde_path_to_error::deserialize(value).map_err(|e| {
            let at = e.path().to_string();
            err(if at == "." {
                e.inner().to_string()
            } else {
                format!("{at}: {}", e.inner())
            })
        })?;
        if wf.name.is_none() {
            wf.name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        }
        if let Some(tz) = &wf.timezone {
            tz.parse::<chrono_tz::Tz>()
                .map_err(|_| err(format!("timezone: unknown time zone {tz:?}")))?;
        }
        let timezone = wf.timezone().to_string();
        if let Some(schedule) = &mut wf.schedule {
            schedule.timezone = timezone;
            crate::Schedule::parse(schedule).map_err(|m| err(format!("schedule: {m}")))?;
        }
        check_tasks(&wf.tasks, "tasks").map_err(err)?;
        check_tasks(&wf.on_error, "on_error").map_err(err)?;
        Ok(wf)
    }

    /// The workflow's name.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("workflow")
    }

    /// Its time zone's name.
    pub fn timezone(&self) -> &str {
        self.timezone.as_deref().unwrap_or("UTC")
    }
}

fn check_tasks(tasks: &[TaskDef], at: &str) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, task) in tasks.iter().enumerate() {
        let here = format!("{at}[{i}]");
        if task.name.is_empty()
            || task
                .name
                .chars()
                .any(|c| !(c.is_alphanumeric() || "_-.".contains(c)))
        {
            return Err(format!(
                "{here}.name: {:?} must be letters, digits, '_', '-' or '.'",
                task.name
            ));
        }
        if !seen.insert(task.name.as_str()) {
            return Err(format!("{here}.name: {:?} is used twice", task.name));
        }
        let kinds: Vec<&str> = [
            ("transfer", task.transfer.is_some()),
            ("call", task.call.is_some()),
            ("http", task.http.is_some()),
            ("sh", task.sh.is_some()),
            ("echo", task.echo.is_some()),
            ("tasks", task.tasks.is_some()),
            ("for_each", task.for_each.is_some()),
            ("for_each_row", task.for_each_row.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, on)| on.then_some(k))
        .collect();
        match kinds.as_slice() {
            [_] => {}
            [] => {
                return Err(format!(
                    "{here} ({}): needs one of transfer, call, http, sh, echo, tasks, for_each, for_each_row",
                    task.name
                ));
            }
            many => {
                return Err(format!(
                    "{here} ({}): has {}; a task does one thing (use `tasks:` for several)",
                    task.name,
                    many.join(" and ")
                ));
            }
        }
        if task.full_refresh.is_some() && task.transfer.is_none() {
            return Err(format!(
                "{here}.full_refresh: only a `transfer` task has state to ignore"
            ));
        }
        let loops = task.for_each.is_some() || task.for_each_row.is_some();
        if loops != task.do_tasks.is_some() {
            return Err(format!(
                "{here} ({}): `for_each` (or `for_each_row`) and `do` go together",
                task.name
            ));
        }
        if let Some(rows) = &task.for_each_row
            && (rows.query.trim().is_empty() || rows.url.trim().is_empty())
        {
            return Err(format!("{here}.for_each_row: needs a `url` and a `query`"));
        }
        if let Some(sub) = &task.tasks {
            check_tasks(sub, &format!("{here}.tasks"))?;
        }
        if let Some(sub) = &task.do_tasks {
            check_tasks(sub, &format!("{here}.do"))?;
        }
        check_tasks(&task.on_error, &format!("{here}.on_error"))?;
        if let Some(retry) = &task.retry {
            retry.policy().map_err(|m| format!("{here}.retry: {m}"))?;
        }
    }
    Ok(())
}

impl Retry {
    /// The policy the queue applies.
    ///
    /// # Errors
    /// A message for a bad interval or backoff.
    pub fn policy(&self) -> Result<sluice_store::RetryPolicy, String> {
        Ok(match self {
            Retry::Limit(n) => sluice_store::RetryPolicy {
                limit: i64::from(*n),
                interval_ms: 0,
                exponential: false,
            },
            Retry::Policy {
                limit,
                interval,
                backoff,
            } => sluice_store::RetryPolicy {
                limit: i64::from(*limit),
                interval_ms: match interval {
                    None => 0,
                    Some(v) => parse_duration(v)?.as_millis() as i64,
                },
                exponential: match backoff.as_deref() {
                    None | Some("constant") => false,
                    Some("exponential") => true,
                    Some(other) => {
                        return Err(format!(
                            "backoff: {other:?} is neither constant nor exponential"
                        ));
                    }
                },
            },
        })
    }
}

/// `10s`, `500ms`, `2m`, `1h`, or a number of seconds.
///
/// # Errors
/// A message naming what was given.
pub fn parse_duration(v: &Value) -> Result<Duration, String> {
    if let Some(secs) = v.as_f64() {
        return Ok(Duration::from_secs_f64(secs.max(0.0)));
    }
    let s = v
        .as_str()
        .ok_or_else(|| format!("{v} is not a duration"))?
        .trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 10s, 500ms, 2m, 1h"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?} is not a duration like 10s, 500ms, 2m, 1h")),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Workflow> {
        Workflow::parse(text, Path::new("flows/daily.yaml"))
    }

    #[test]
    fn parses_and_names_errors() {
        let wf = parse(
            "timezone: Asia/Tokyo\nschedule: {daily: '07:00'}\ntasks:\n  - {name: a, echo: hi}\n",
        )
        .unwrap();
        assert_eq!(wf.name(), "daily");
        assert_eq!(wf.schedule.unwrap().timezone, "Asia/Tokyo");
        let e = parse("tasks:\n  - {name: a, echo: hi, sh: ls}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a task does one thing"), "{e}");
        let e = parse("tasks:\n  - {name: a, ech: hi}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("flows/daily.yaml: tasks[0]") && e.contains("ech"),
            "{e}"
        );
        let e = parse("tasks:\n  - {name: a, echo: x}\n  - {name: a, echo: y}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("used twice"), "{e}");
        let e = parse("timezone: Mars/Olympus\ntasks: []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown time zone"), "{e}");
        let e = parse("tasks: [\n").unwrap_err().to_string();
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn durations_and_retries() {
        assert_eq!(
            parse_duration(&"500ms".into()).unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration(&"2m".into()).unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(
            parse_duration(&serde_json::json!(3)).unwrap(),
            Duration::from_secs(3)
        );
        assert!(parse_duration(&"soon".into()).is_err());
        let r = Retry::Policy {
            limit: 2,
            interval: Some("1s".into()),
            backoff: Some("exponential".into()),
        };
        let p = r.policy().unwrap();
        assert_eq!((p.limit, p.interval_ms, p.exponential), (2, 1000, true));
    }
}
