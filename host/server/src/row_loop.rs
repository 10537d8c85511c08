//! `for_each_row`: run a loop's query when the loop is reached, and put one
//! round per row into the running attempt.
//!
//! The query runs on the worker, through the host's own database drivers
//! (`sluice-sql`), with the URL's `${secret:…}` filled in here and nowhere
//! else. The rounds and the task's success are then one transaction in the
//! store ([`Store::add_generated`]): a worker that dies in between leaves
//! either no rounds or all of them, never half.

use arrow::json::ArrayWriter;
use serde_json::{Map, Value};
use sluice_store::{Generated, LeasedTask, Outcome, Store};
use sluice_workflow::{Params, RowLoop, expand_rows};

use crate::execute::{TaskContext, failed, fill_secrets};

/// Rows per batch read from the database.
const BATCH_ROWS: usize = 1024;

/// Run the loop task `task` (its `config` a [`RowLoop`]).
pub async fn run(
    store: &Store,
    task: &LeasedTask,
    config: &Value,
    params: &Params,
    ctx: &TaskContext,
) -> Outcome {
    let generator: RowLoop = match serde_json::from_value(config.clone()) {
        Ok(g) => g,
        Err(e) => return failed(format!("bad stored for_each_row task: {e}"), false),
    };
    let url = match fill_secrets(&generator.url, ctx).and_then(|u| fill_env(&u)) {
        Ok(url) => url,
        Err(e) => return failed(format!("for_each_row.url: {e}"), false),
    };
    let query = generator.query.clone();
    // One row more than allowed tells "too many" from "exactly the limit".
    let cap = generator.max_rows as usize + 1;
    let rows = tokio::task::spawn_blocking(move || query_rows(&url, &query, cap)).await;
    let rows = match rows {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            let retryable = e.kind == sluice_sql::ErrorKind::Transient;
            return failed(
                format!("for_each_row: {}", ctx.log.mask(&e.to_string())),
                retryable,
            );
        }
        Err(e) => return failed(format!("for_each_row: the query panicked: {e}"), false),
    };
    let rounds = rows.len();
    ctx.log.line(&format!("the query returned {rounds} rows"));
    let root = ctx.root.clone();
    let read =
        move |path: &str| std::fs::read_to_string(root.join(path)).map_err(|e| e.to_string());
    let plan = match expand_rows(&generator, params, rows, &read) {
        Ok(plan) => plan,
        Err(e) => return failed(e.to_string(), false),
    };
    let summary = serde_json::json!({ "rounds": rounds }).to_string();
    match store
        .add_generated(&ctx.worker, task.id, &plan, &summary)
        .await
    {
        Ok(Generated::Added(tasks)) => {
            ctx.log
                .line(&format!("added {tasks} tasks for {rounds} rounds"));
            Outcome::Succeeded {
                summary: Some(summary),
            }
        }
        Ok(Generated::AlreadyAdded) => {
            ctx.log
                .line("an earlier lease of this task added its rounds already");
            Outcome::Succeeded { summary: None }
        }
        Ok(Generated::AttemptOver) => Outcome::Cancelled,
        // The outcome is dropped as lost when reported; the new holder adds them.
        Ok(Generated::Lost) => Outcome::Released,
        Err(e) => failed(format!("cannot add the rounds: {e}"), true),
    }
}

/// Put this worker's environment variables in place of `${env:NAME}`, as
/// a job file's values get them.
fn fill_env(text: &str) -> Result<String, String> {
    let mut out = text.to_string();
    while let Some(start) = out.find("${env:") {
        let end = out[start..].find('}').ok_or("unclosed ${env:")? + start;
        let name = out[start + 6..end].trim().to_string();
        let value = std::env::var(&name)
            .map_err(|_| format!("the environment variable {name} is not set"))?;
        out.replace_range(start..=end, &value);
    }
    Ok(out)
}

/// The query's rows as JSON objects (column name to value), at most `cap`.
fn query_rows(url: &str, query: &str, cap: usize) -> sluice_sql::Result<Vec<Map<String, Value>>> {
    let mut connection = sluice_sql::Connection::open("for_each_row", url)?;
    let mut rows = connection.query(query, &[], BATCH_ROWS)?;
    let mut out = Vec::new();
    while let Some(batch) = rows.next_batch()? {
        let mut writer = ArrayWriter::new(Vec::new());
        writer
            .write(&batch)
            .and_then(|_| writer.finish())
            .map_err(|e| sluice_sql::Error::data(format!("a row as JSON: {e}")))?;
        let text = writer.into_inner();
        let parsed: Vec<Map<String, Value>> = serde_json::from_slice(&text)
            .map_err(|e| sluice_sql::Error::data(format!("a row as JSON: {e}")))?;
        // The JSON writer leaves out nulls: a round still sees every column.
        for mut row in parsed {
            for field in batch.schema().fields() {
                row.entry(field.name().clone()).or_insert(Value::Null);
            }
            out.push(row);
        }
        if out.len() >= cap {
            out.truncate(cap);
            break;
        }
    }
    Ok(out)
}
