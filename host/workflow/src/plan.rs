//! Expand a workflow into the task graph of one attempt.
//!
//! Every group is a barrier row that waits for its children, so a sequence
//! of big parallel groups costs edges in proportion to the tasks, not to
//! their product: a group's first tasks wait on whatever the group waits
//! on, and the next sibling waits on the group. `parallel: N` runs the
//! children in N lanes (child i waits for child i-N).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_store::{NewTask, Plan, RetryPolicy, TaskStart};

use crate::definition::{Parallel, Retry, RowSource, TaskDef, Workflow};
use crate::error::{Error, Result};
use crate::template::{self, Params, render_value, truthy};

/// How deep `call:` may nest (a workflow calling itself is an error, not a hang).
const MAX_CALL_DEPTH: usize = 8;

/// The attempt's graph and the parameters it was expanded with.
#[derive(Debug, Clone)]
pub struct Expansion {
    /// The task graph.
    pub plan: Plan,
    /// The workflow-level parameters (session variables included).
    pub params: Params,
}

/// The kind of the task that runs a `for_each_row` query.
pub const ROW_LOOP_KIND: &str = "for_each_row";

/// What a `for_each_row` task carries into the queue: its query, and
/// everything needed to expand its rounds once the rows are known.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowLoop {
    /// The database URL (`${secret:…}` still unfilled).
    pub url: String,
    /// The query, with the workflow's `${…}` already filled in.
    pub query: String,
    /// More rows than this fail the task.
    pub max_rows: u32,
    /// The tasks each round runs.
    pub body: Vec<TaskDef>,
    /// How rounds run side by side.
    pub parallel: Option<Parallel>,
    /// The loop's name: rounds are `<prefix>+[col=value,…]`.
    pub prefix: String,
    /// The workflow file it is in, and that file's directory.
    pub file: String,
    /// The directory paths are relative to.
    pub dir: String,
    /// The default retry policy of its tasks.
    pub retry: Option<Retry>,
    /// Inside an `on_error` handler.
    pub in_handler: bool,
    /// Workflow files being expanded around it (for `call:` loops).
    pub stack: Vec<String>,
    /// Where its `do` is, for messages.
    pub at: String,
}

/// The rounds of a `for_each_row` loop for the rows its query returned
/// (each row: column name to value), as a graph to add to a running attempt.
///
/// Nodes 0 and 1 are not new: they stand for the loop's group (node 0's
/// `upstream` lists what it must now wait for) and, inside an `on_error`
/// handler, the handler's root. Every other node is new.
///
/// # Errors
/// Too many rows, a round repeated, an unknown variable in the `do` tasks.
pub fn expand_rows(
    generator: &RowLoop,
    params: &Params,
    rows: Vec<serde_json::Map<String, Value>>,
    read: &dyn Fn(&str) -> std::result::Result<String, String>,
) -> Result<Plan> {
    let file = generator.file.as_str();
    if rows.len() > generator.max_rows as usize {
        return Err(Error::Invalid {
            file: file.to_string(),
            message: format!(
                "{}: the query returned {} rows, more than max_rows ({})",
                generator.at.trim_end_matches(".do"),
                rows.len(),
                generator.max_rows
            ),
        });
    }
    let placeholder = |name: &str| NewTask {
        parent: None,
        name: name.to_string(),
        kind: "group".into(),
        config: "{}".into(),
        params: "{}".into(),
        upstream: Vec::new(),
        retry: RetryPolicy::default(),
        start: TaskStart::Active,
        on_error_of: None,
        error_root: None,
    };
    let mut x = Expander {
        tasks: vec![placeholder(&generator.prefix), placeholder("^error")],
        read,
        stack: generator.stack.clone(),
    };
    let scope = Scope {
        file: generator.file.clone(),
        dir: generator.dir.clone(),
        retry: generator.retry.clone(),
        error_root: generator.in_handler.then_some(1),
    };
    let rounds = rows
        .into_iter()
        .map(|row| row.into_iter().collect::<Vec<_>>())
        .collect();
    let exits = x.loop_rounds(
        rounds,
        &generator.body,
        generator.parallel,
        0,
        &generator.prefix,
        &[],
        params,
        &scope,
        &generator.at,
    )?;
    x.tasks[0].upstream = exits;
    // The handler the loop is in is awake already: its rounds run at once.
    for task in &mut x.tasks[2..] {
        if task.error_root == Some(1) {
            task.start = TaskStart::Active;
        }
    }
    Ok(Plan { tasks: x.tasks })
}

/// Expand `workflow` (the file `file`, a path inside its project) with the
/// session variables in `params`; `read` returns another project file's
/// text (for `call:`).
///
/// # Errors
/// An unknown variable, a bad `for_each`, a `call` that cannot be read.
pub fn expand(
    workflow: &Workflow,
    file: &str,
    mut params: Params,
    read: &dyn Fn(&str) -> std::result::Result<String, String>,
) -> Result<Expansion> {
    params.insert("workflow".into(), json!(workflow.name()));
    let mut x = Expander {
        tasks: Vec::new(),
        read,
        stack: vec![file.to_string()],
    };
    let params = x.with_params(params, &workflow.params, file, "params")?;
    let root_name = format!("+{}", workflow.name());
    let root = x.push(NewTask {
        parent: None,
        name: root_name.clone(),
        kind: "group".into(),
        config: "{}".into(),
        params: "{}".into(),
        upstream: Vec::new(),
        retry: RetryPolicy::default(),
        start: TaskStart::Active,
        on_error_of: None,
        error_root: None,
    });
    let scope = Scope {
        file: file.to_string(),
        dir: parent_dir(file),
        retry: workflow.retry.clone(),
        error_root: None,
    };
    let exits = x.children(
        &workflow.tasks,
        root,
        &root_name,
        &[],
        &params,
        workflow.parallel,
        &scope,
        "tasks",
    )?;
    x.tasks[root].upstream = exits;
    x.handlers(
        &workflow.on_error,
        root,
        &root_name,
        &params,
        &scope,
        "on_error",
    )?;
    Ok(Expansion {
        plan: Plan { tasks: x.tasks },
        params,
    })
}

/// What a task inherits from where it is written.
#[derive(Clone)]
struct Scope {
    /// The workflow file it is in (for messages).
    file: String,
    /// That file's directory inside the project (paths are relative to it).
    dir: String,
    /// The default retry policy.
    retry: Option<Retry>,
    /// Inside an `on_error` handler: the handler's root.
    error_root: Option<usize>,
}

struct Expander<'a> {
    tasks: Vec<NewTask>,
    read: &'a dyn Fn(&str) -> std::result::Result<String, String>,
    /// Workflow files being expanded, outermost first (for `call:` loops).
    stack: Vec<String>,
}

/// Place `count` siblings after `preds`: in order, all at once, or in N
/// lanes (child i waits for child i-N). `expand(i, wait)` adds child i
/// waiting on `wait` and returns its exit. Returns what the next sibling
/// waits on (nothing when there are no children).
fn lay_out(
    count: usize,
    parallel: Option<Parallel>,
    preds: &[usize],
    mut expand: impl FnMut(usize, &[usize]) -> Result<usize>,
) -> Result<Vec<usize>> {
    let lanes = match parallel {
        None | Some(Parallel::All(false)) => 1,
        Some(Parallel::All(true)) => usize::MAX,
        Some(Parallel::Limit(n)) => n.max(1) as usize,
    };
    let mut exits: Vec<usize> = Vec::with_capacity(count);
    for i in 0..count {
        let wait = match i.checked_sub(lanes) {
            Some(before) => vec![exits[before]],
            None => preds.to_vec(),
        };
        exits.push(expand(i, &wait)?);
    }
    // Each lane is a chain: its last task stands for it.
    let keep = exits.len().saturating_sub(lanes.min(exits.len()));
    Ok(exits.split_off(keep))
}

fn parent_dir(file: &str) -> String {
    match file.rfind('/') {
        Some(i) => file[..i].to_string(),
        None => String::new(),
    }
}

fn join(dir: &str, path: &str) -> String {
    if dir.is_empty() || path.starts_with('/') {
        path.to_string()
    } else {
        format!("{dir}/{path}")
    }
}

impl Expander<'_> {
    fn push(&mut self, task: NewTask) -> usize {
        self.tasks.push(task);
        self.tasks.len() - 1
    }

    fn invalid(file: &str, message: String) -> Error {
        Error::Invalid {
            file: file.to_string(),
            message,
        }
    }

    fn render(&self, value: &Value, params: &Params, file: &str, at: &str) -> Result<Value> {
        render_value(value, params, at).map_err(|(at, name)| Error::UnknownVariable {
            file: file.to_string(),
            at,
            name,
            known: params.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// `params` plus `extra`, each rendered against what came before.
    fn with_params(
        &self,
        mut params: Params,
        extra: &serde_json::Map<String, Value>,
        file: &str,
        at: &str,
    ) -> Result<Params> {
        for (k, v) in extra {
            let v = self.render(v, &params, file, &format!("{at}.{k}"))?;
            params.insert(k.clone(), v);
        }
        Ok(params)
    }

    /// Expand sibling tasks; returns the nodes the next sibling waits on.
    #[allow(clippy::too_many_arguments)]
    fn children(
        &mut self,
        defs: &[TaskDef],
        parent: usize,
        prefix: &str,
        preds: &[usize],
        params: &Params,
        parallel: Option<Parallel>,
        scope: &Scope,
        at: &str,
    ) -> Result<Vec<usize>> {
        lay_out(defs.len(), parallel, preds, |i, wait| {
            self.task(
                &defs[i],
                parent,
                prefix,
                wait,
                params,
                scope,
                &format!("{at}[{i}]"),
            )
        })
    }

    /// Expand one task; returns its exit node.
    #[allow(clippy::too_many_arguments)]
    fn task(
        &mut self,
        def: &TaskDef,
        parent: usize,
        prefix: &str,
        preds: &[usize],
        params: &Params,
        scope: &Scope,
        at: &str,
    ) -> Result<usize> {
        let name = format!("{prefix}+{}", def.name);
        let file = scope.file.as_str();
        let mut params =
            self.with_params(params.clone(), &def.params, file, &format!("{at}.params"))?;
        params.insert("task_name".into(), json!(name));
        let start = if scope.error_root.is_some() {
            TaskStart::Dormant
        } else {
            TaskStart::Active
        };
        let node = |kind: &str, config: Value, params: &Params, retry: RetryPolicy| NewTask {
            parent: Some(parent),
            name: name.clone(),
            kind: kind.to_string(),
            config: config.to_string(),
            params: serde_json::to_string(params).unwrap_or_else(|_| "{}".into()),
            upstream: preds.to_vec(),
            retry,
            start,
            on_error_of: None,
            error_root: scope.error_root,
        };
        if let Some(cond) = &def.if_ {
            let value = self.render(cond, &params, file, &format!("{at}.if"))?;
            if !truthy(&value) {
                let skip = node(
                    "skip",
                    json!({"if": value}),
                    &Params::new(),
                    RetryPolicy::default(),
                );
                return Ok(self.push(skip));
            }
        }
        let retry = def
            .retry
            .as_ref()
            .or(scope.retry.as_ref())
            .map(|r| r.policy())
            .transpose()
            .map_err(|m| Self::invalid(file, format!("{at}.retry: {m}")))?
            .unwrap_or_default();
        let leaf = |kind: &str, value: &Value, x: &Self| -> Result<(String, Value)> {
            let v = x.render(value, &params, file, &format!("{at}.{kind}"))?;
            Ok((kind.to_string(), v))
        };
        let single = if let Some(t) = &def.transfer {
            let (_, v) = leaf("transfer", t, self)?;
            let full_refresh = def.full_refresh.unwrap_or(false);
            Some((
                "transfer",
                match v {
                    Value::String(path) => {
                        json!({"file": join(&scope.dir, &path), "dir": scope.dir, "full_refresh": full_refresh})
                    }
                    Value::Object(_) => {
                        json!({"job": v, "dir": scope.dir, "full_refresh": full_refresh})
                    }
                    other => {
                        return Err(Self::invalid(
                            file,
                            format!(
                                "{at}.transfer: expected a job file path or a job, found {other}"
                            ),
                        ));
                    }
                },
            ))
        } else if let Some(h) = &def.http {
            let (_, v) = leaf("http", h, self)?;
            Some(("http", if v.is_string() { json!({"url": v}) } else { v }))
        } else if let Some(s) = &def.sh {
            let (_, v) = leaf("sh", s, self)?;
            let v = if v.is_string() {
                json!({"command": v})
            } else {
                v
            };
            let mut v = v;
            if let Value::Object(m) = &mut v {
                m.insert("dir".into(), json!(scope.dir));
            }
            Some(("sh", v))
        } else if let Some(e) = &def.echo {
            let (_, v) = leaf("echo", e, self)?;
            Some(("echo", json!({"message": v})))
        } else {
            None
        };
        let exit = if let Some((kind, config)) = single {
            let task = node(kind, config, &params, retry);
            self.push(task)
        } else {
            let group = node("group", json!({}), &Params::new(), RetryPolicy::default());
            let g = self.push(group);
            self.tasks[g].upstream = Vec::new();
            let exits = if let Some(sub) = &def.tasks {
                self.children(
                    sub,
                    g,
                    &name,
                    preds,
                    &params,
                    def.parallel,
                    scope,
                    &format!("{at}.tasks"),
                )?
            } else if let Some(each) = &def.for_each {
                self.for_each(def, each, g, &name, preds, &params, scope, at)?
            } else if let Some(rows) = &def.for_each_row {
                let generator = self.row_loop(def, rows, g, &name, preds, &params, scope, at)?;
                self.tasks[generator].retry = retry;
                vec![generator]
            } else if let Some(call) = &def.call {
                self.call(call, g, &name, preds, &params, scope, at)?
            } else {
                unreachable!("checked when the workflow was parsed")
            };
            self.tasks[g].upstream = if exits.is_empty() {
                preds.to_vec()
            } else {
                exits
            };
            g
        };
        self.handlers(
            &def.on_error,
            exit,
            &name,
            &params,
            scope,
            &format!("{at}.on_error"),
        )?;
        Ok(exit)
    }

    #[allow(clippy::too_many_arguments)]
    fn for_each(
        &mut self,
        def: &TaskDef,
        each: &Value,
        group: usize,
        name: &str,
        preds: &[usize],
        params: &Params,
        scope: &Scope,
        at: &str,
    ) -> Result<Vec<usize>> {
        let file = scope.file.as_str();
        let each = self.render(each, params, file, &format!("{at}.for_each"))?;
        let Value::Object(vars) = each else {
            return Err(Self::invalid(
                file,
                format!("{at}.for_each: expected variables with lists, e.g. {{region: [jp, us]}}"),
            ));
        };
        // The product of every variable's values (variables in name order).
        let mut rounds: Vec<Vec<(String, Value)>> = vec![Vec::new()];
        for (var, values) in &vars {
            let values = match values {
                Value::Array(a) => a.clone(),
                Value::String(s) => match serde_json::from_str::<Value>(s) {
                    Ok(Value::Array(a)) => a,
                    _ => s.split(',').map(|v| json!(v.trim())).collect(),
                },
                other => {
                    return Err(Self::invalid(
                        file,
                        format!("{at}.for_each.{var}: expected a list, found {other}"),
                    ));
                }
            };
            rounds = rounds
                .into_iter()
                .flat_map(|round| {
                    values.iter().map(move |v| {
                        let mut r = round.clone();
                        r.push((var.clone(), v.clone()));
                        r
                    })
                })
                .collect();
        }
        let body = def.do_tasks.as_deref().unwrap_or_default();
        self.loop_rounds(
            rounds,
            body,
            def.parallel,
            group,
            name,
            preds,
            params,
            scope,
            at,
        )
    }

    /// One round per entry of `rounds` (its variables), each running `body`
    /// in order; the rounds follow `parallel` like siblings do.
    #[allow(clippy::too_many_arguments)]
    fn loop_rounds(
        &mut self,
        rounds: Vec<Vec<(String, Value)>>,
        body: &[TaskDef],
        parallel: Option<Parallel>,
        group: usize,
        name: &str,
        preds: &[usize],
        params: &Params,
        scope: &Scope,
        at: &str,
    ) -> Result<Vec<usize>> {
        let file = scope.file.as_str();
        let mut names = std::collections::BTreeSet::new();
        let round_defs: Vec<(TaskDef, Params)> = rounds
            .into_iter()
            .map(|round| {
                let label = round
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{k}={}",
                            v.as_str().map_or_else(|| v.to_string(), str::to_string)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                let mut p = params.clone();
                p.extend(round);
                (
                    TaskDef {
                        name: format!("[{label}]"),
                        transfer: None,
                        full_refresh: None,
                        call: None,
                        http: None,
                        sh: None,
                        echo: None,
                        tasks: Some(body.to_vec()),
                        for_each: None,
                        for_each_row: None,
                        do_tasks: None,
                        parallel: None,
                        if_: None,
                        retry: None,
                        on_error: Vec::new(),
                        params: Default::default(),
                    },
                    p,
                )
            })
            .collect();
        for (d, _) in &round_defs {
            if !names.insert(d.name.clone()) {
                return Err(Self::invalid(
                    file,
                    format!(
                        "{at}: the round {} repeats (for rows of a query, SELECT DISTINCT)",
                        d.name
                    ),
                ));
            }
        }
        lay_out(round_defs.len(), parallel, preds, |i, wait| {
            let (round, p) = &round_defs[i];
            self.task(round, group, name, wait, p, scope, &format!("{at}.do"))
        })
    }

    /// `for_each_row`: one task that runs the query when the loop is
    /// reached and puts the rounds in the queue then (see [`expand_rows`]).
    /// Returns that task.
    #[allow(clippy::too_many_arguments)]
    fn row_loop(
        &mut self,
        def: &TaskDef,
        rows: &RowSource,
        group: usize,
        name: &str,
        preds: &[usize],
        params: &Params,
        scope: &Scope,
        at: &str,
    ) -> Result<usize> {
        let file = scope.file.as_str();
        let source = |what: &str, text: &str| -> Result<String> {
            match self.render(
                &json!(text),
                params,
                file,
                &format!("{at}.for_each_row.{what}"),
            )? {
                Value::String(s) => Ok(s),
                other => Ok(other.to_string()),
            }
        };
        let generator = RowLoop {
            url: source("url", &rows.url)?,
            query: source("query", &rows.query)?,
            max_rows: rows.max_rows,
            body: def.do_tasks.clone().unwrap_or_default(),
            parallel: def.parallel,
            prefix: name.to_string(),
            file: scope.file.clone(),
            dir: scope.dir.clone(),
            retry: scope.retry.clone(),
            in_handler: scope.error_root.is_some(),
            stack: self.stack.clone(),
            at: format!("{at}.do"),
        };
        let config = serde_json::to_value(&generator)
            .map_err(|e| Self::invalid(file, format!("{at}: {e}")))?;
        let start = if scope.error_root.is_some() {
            TaskStart::Dormant
        } else {
            TaskStart::Active
        };
        Ok(self.push(NewTask {
            parent: Some(group),
            name: format!("{name}^rows"),
            kind: ROW_LOOP_KIND.into(),
            config: config.to_string(),
            params: serde_json::to_string(params).unwrap_or_else(|_| "{}".into()),
            upstream: preds.to_vec(),
            retry: RetryPolicy::default(),
            start,
            on_error_of: None,
            error_root: scope.error_root,
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        call: &str,
        group: usize,
        name: &str,
        preds: &[usize],
        params: &Params,
        scope: &Scope,
        at: &str,
    ) -> Result<Vec<usize>> {
        let file = scope.file.as_str();
        let path = match template::render(call, params) {
            Ok(Value::String(s)) => join(&scope.dir, &s),
            Ok(other) => join(&scope.dir, &other.to_string()),
            Err(var) => {
                return Err(Error::UnknownVariable {
                    file: file.to_string(),
                    at: format!("{at}.call"),
                    name: var,
                    known: params.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        };
        if self.stack.contains(&path) || self.stack.len() > MAX_CALL_DEPTH {
            return Err(Self::invalid(
                file,
                format!(
                    "{at}.call: {path} calls itself ({})",
                    self.stack.join(" -> ")
                ),
            ));
        }
        let text = (self.read)(&path)
            .map_err(|e| Self::invalid(file, format!("{at}.call: cannot read {path}: {e}")))?;
        let called = Workflow::parse(&text, std::path::Path::new(&path))?;
        self.stack.push(path.clone());
        let params = self.with_params(params.clone(), &called.params, &path, "params")?;
        let inner = Scope {
            file: path.clone(),
            dir: parent_dir(&path),
            retry: called.retry.clone().or_else(|| scope.retry.clone()),
            error_root: scope.error_root,
        };
        let exits = self.children(
            &called.tasks,
            group,
            name,
            preds,
            &params,
            called.parallel,
            &inner,
            "tasks",
        )?;
        self.handlers(&called.on_error, group, name, &params, &inner, "on_error")?;
        self.stack.pop();
        Ok(exits)
    }

    /// `on_error` tasks of `target`: a dormant group woken if it fails.
    fn handlers(
        &mut self,
        defs: &[TaskDef],
        target: usize,
        name: &str,
        params: &Params,
        scope: &Scope,
        at: &str,
    ) -> Result<()> {
        if defs.is_empty() {
            return Ok(());
        }
        let root_name = format!("{name}^error");
        let root = self.push(NewTask {
            parent: Some(target),
            name: root_name.clone(),
            kind: "group".into(),
            config: "{}".into(),
            params: "{}".into(),
            upstream: Vec::new(),
            retry: RetryPolicy::default(),
            start: TaskStart::Dormant,
            on_error_of: Some(target),
            error_root: None,
        });
        self.tasks[root].error_root = Some(root);
        let inner = Scope {
            error_root: Some(root),
            ..scope.clone()
        };
        let exits = self.children(defs, root, &root_name, &[], params, None, &inner, at)?;
        self.tasks[root].upstream = exits;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn expand_text(text: &str) -> Result<Plan> {
        let wf = Workflow::parse(text, Path::new("flows/w.yaml"))?;
        let mut p = Params::new();
        p.insert("session_date".into(), json!("2026-12-02"));
        let files = |path: &str| match path {
            "flows/sub.yaml" => {
                Ok("params: {x: 1}\ntasks:\n  - {name: s1, echo: 'sub ${x}'}\n".into())
            }
            "flows/loop.yaml" => Ok("tasks:\n  - {name: again, call: loop.yaml}\n".into()),
            _ => Err("no such file".to_string()),
        };
        expand(&wf, "flows/w.yaml", p, &files).map(|e| e.plan)
    }

    fn find<'a>(plan: &'a Plan, name: &str) -> (usize, &'a NewTask) {
        plan.tasks
            .iter()
            .enumerate()
            .find(|(_, t)| t.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no task {name}: {:?}",
                    plan.tasks.iter().map(|t| &t.name).collect::<Vec<_>>()
                )
            })
    }

    #[test]
    fn sequence_parallel_and_lanes() {
        let plan = expand_text(
            "tasks:\n  - {name: a, echo: x}\n  - name: g\n    parallel: true\n    tasks:\n      - {name: b, echo: x}\n      - {name: c, echo: x}\n  - name: l\n    parallel: 2\n    tasks:\n      - {name: d1, echo: x}\n      - {name: d2, echo: x}\n      - {name: d3, echo: x}\n  - {name: z, echo: 'on ${session_date}'}\n",
        )
        .unwrap();
        let (a, _) = find(&plan, "+w+a");
        let (g, gt) = find(&plan, "+w+g");
        let (b, bt) = find(&plan, "+w+g+b");
        let (c, ct) = find(&plan, "+w+g+c");
        assert_eq!(bt.upstream, vec![a]);
        assert_eq!(ct.upstream, vec![a]);
        assert_eq!(gt.upstream, vec![b, c]);
        let (d1, _) = find(&plan, "+w+l+d1");
        let (d2, _) = find(&plan, "+w+l+d2");
        let (_, d3) = find(&plan, "+w+l+d3");
        assert_eq!(d3.upstream, vec![d1]);
        let (l, lt) = find(&plan, "+w+l");
        assert_eq!(lt.upstream.len(), 2);
        assert!(lt.upstream.contains(&d2));
        let (_, z) = find(&plan, "+w+z");
        assert_eq!(z.upstream, vec![l]);
        assert!(z.config.contains("on 2026-12-02"));
        assert_eq!(plan.tasks[0].upstream, vec![find(&plan, "+w+z").0]);
        assert!(g < b);
    }

    #[test]
    fn for_each_if_call_and_handlers() {
        let plan = expand_text(
            "params: {on: false}\ntasks:\n  - name: each\n    for_each: {r: [jp, us], n: [1, 2]}\n    parallel: true\n    do:\n      - {name: t, echo: '${r}-${n}'}\n  - {name: maybe, if: '${on}', echo: x}\n  - {name: sub, call: sub.yaml}\n    \non_error:\n  - {name: alert, echo: failed}\n",
        )
        .unwrap();
        let (_, t) = find(&plan, "+w+each+[n=2,r=us]+t");
        assert!(t.config.contains("us-2"), "{}", t.config);
        assert_eq!(
            plan.tasks.iter().filter(|t| t.name.ends_with("+t")).count(),
            4
        );
        assert_eq!(find(&plan, "+w+maybe").1.kind, "skip");
        assert!(find(&plan, "+w+sub+s1").1.config.contains("sub 1"));
        let (h, handler) = find(&plan, "+w^error");
        assert_eq!(handler.on_error_of, Some(0));
        assert_eq!(handler.start, TaskStart::Dormant);
        let (_, alert) = find(&plan, "+w^error+alert");
        assert_eq!(alert.error_root, Some(h));
        assert!(alert.upstream.is_empty());
    }

    #[test]
    fn errors_name_the_place() {
        let e = expand_text("tasks:\n  - {name: a, echo: '${nope}'}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tasks[0].echo") && e.contains("${nope}"), "{e}");
        let e = expand_text("tasks:\n  - {name: a, call: loop.yaml}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("calls itself"), "{e}");
        let e = expand_text("tasks:\n  - {name: a, call: gone.yaml}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read flows/gone.yaml"), "{e}");
    }

    #[test]
    fn for_each_row_waits_for_its_rows_then_expands_them() {
        let plan = expand_text(
            "tasks:\n  - {name: before, echo: x}\n  - name: each\n    for_each_row:\n      url: ${secret:wh}\n      query: SELECT r FROM t WHERE d = '${session_date}'\n    parallel: 2\n    retry: 2\n    do:\n      - {name: t, echo: '${r} on ${session_date}'}\n  - {name: after, echo: y}\n",
        )
        .unwrap();
        let (before, _) = find(&plan, "+w+before");
        let (g, group) = find(&plan, "+w+each");
        let (q, generator) = find(&plan, "+w+each^rows");
        assert_eq!(generator.kind, ROW_LOOP_KIND);
        assert_eq!(generator.upstream, vec![before]);
        assert_eq!(generator.parent, Some(g));
        assert_eq!(generator.retry.limit, 2);
        assert_eq!(group.upstream, vec![q]);
        assert_eq!(find(&plan, "+w+after").1.upstream, vec![g]);
        let config: RowLoop = serde_json::from_str(&generator.config).unwrap();
        // The session's variables are in; the secret waits for the worker.
        assert_eq!(config.url, "${secret:wh}");
        assert_eq!(config.query, "SELECT r FROM t WHERE d = '2026-12-02'");

        // The worker's half: three rows in two lanes.
        let params: Params = serde_json::from_str(&generator.params).unwrap();
        let rows = ["jp", "us", "eu"]
            .iter()
            .map(|r| serde_json::json!({"r": r}).as_object().unwrap().clone())
            .collect();
        let none = |_: &str| Err("no files".to_string());
        let rounds = expand_rows(&config, &params, rows, &none).unwrap();
        let (_, jp) = find(&rounds, "+w+each+[r=jp]+t");
        assert!(jp.config.contains("jp on 2026-12-02"), "{}", jp.config);
        let (us_round, _) = find(&rounds, "+w+each+[r=us]");
        let (_, eu) = find(&rounds, "+w+each+[r=eu]+t");
        let (jp_round, _) = find(&rounds, "+w+each+[r=jp]");
        assert!(eu.upstream.contains(&jp_round), "lane 1: eu after jp");
        assert_eq!(find(&rounds, "+w+each+[r=jp]").1.parent, Some(0));
        assert_eq!(rounds.tasks[0].upstream.len(), 2);
        assert!(rounds.tasks[0].upstream.contains(&us_round));

        // Too many rows, and repeated ones, are errors that say so.
        let mut small = config.clone();
        small.max_rows = 2;
        let three = |n: usize| {
            (0..n)
                .map(|_| serde_json::json!({"r": "x"}).as_object().unwrap().clone())
                .collect::<Vec<_>>()
        };
        let e = expand_rows(&small, &params, three(3), &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than max_rows (2)"), "{e}");
        let e = expand_rows(&config, &params, three(2), &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("repeats") && e.contains("DISTINCT"), "{e}");
        let e =
            expand_text("tasks:\n  - name: l\n    for_each_row: {url: x, query: ''}\n    do: []\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("needs a `url` and a `query`"), "{e}");
    }
}
