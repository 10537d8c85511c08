//! The task queue: leases, heartbeats, completion and what follows from it.
//!
//! Workers lease ready tasks with `FOR UPDATE SKIP LOCKED` (so two workers
//! never take the same row and never wait on each other), keep them by
//! heartbeat, and report outcomes in batches. A finished task releases the
//! tasks downstream of it in the same transaction; `group` and `skip` rows
//! are barriers completed here, never leased. A lease that expires makes
//! the task ready again, counted as a retry: the worker holding it is gone.

use std::sync::Arc;

use sqlx::any::Any;
use sqlx::{Row, Transaction};

use crate::dialect::id_list;
use crate::workflows::{AttemptStatus, Plan, TaskStart};
use crate::{Result, Store};

/// Kinds the queue completes itself.
const BARRIERS: &str = "('group', 'skip')";

/// Kinds a resumed attempt runs again even where they succeeded before:
/// barriers, and `for_each_row` (its query decides the rounds anew, and the
/// rounds that succeeded before are then kept as they are added).
const NOT_KEPT: &str = "('group', 'skip', 'for_each_row')";

/// The channel LISTEN/NOTIFY wakes workers on.
pub const READY_CHANNEL: &str = "sluice_tasks_ready";

/// A task a worker holds a lease on.
#[derive(Debug, Clone)]
pub struct LeasedTask {
    /// Task id.
    pub id: i64,
    /// Attempt id.
    pub attempt_id: i64,
    /// Full name.
    pub name: String,
    /// Kind: what runs it.
    pub kind: String,
    /// Configuration (JSON).
    pub config: String,
    /// Parameters (JSON).
    pub params: String,
    /// Retries so far.
    pub retries: i64,
    /// This lease's number (1 for the first).
    pub lease: i64,
    /// When it became ready, ms since the epoch.
    pub ready_at: i64,
    /// When this lease was taken, ms since the epoch.
    pub leased_at: i64,
}

/// How a leased task ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Done; `summary` (JSON) says what it moved.
    Succeeded {
        /// For transfers: rows, bytes, seconds.
        summary: Option<String>,
    },
    /// Failed; retried if its policy allows and `retryable`.
    Failed {
        /// What went wrong.
        error: String,
        /// False for errors a retry cannot fix (bad config).
        retryable: bool,
    },
    /// Given back unfinished (the worker is shutting down): ready again at
    /// once, not counted as a retry.
    Released,
    /// Stopped because its attempt was killed.
    Cancelled,
}

/// What [`Store::add_generated`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generated {
    /// This many tasks were added.
    Added(usize),
    /// An earlier lease of the task added them already.
    AlreadyAdded,
    /// The lease was lost (it expired and went to another worker).
    Lost,
    /// The attempt failed or was killed meanwhile: nothing was added.
    AttemptOver,
}

/// A task's state, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// An `on_error` handler nobody needed (yet).
    Dormant,
    /// Waiting for upstream tasks.
    Blocked,
    /// Waiting for a worker.
    Ready,
    /// Leased.
    Running,
    /// Done.
    Succeeded,
    /// Its `if:` was false.
    Skipped,
    /// Failed after its retries.
    Failed,
    /// The attempt failed or was killed before it ran.
    Cancelled,
}

impl TaskState {
    /// Parse the stored text.
    pub fn parse(s: &str) -> Option<TaskState> {
        Some(match s {
            "dormant" => TaskState::Dormant,
            "blocked" => TaskState::Blocked,
            "ready" => TaskState::Ready,
            "running" => TaskState::Running,
            "succeeded" => TaskState::Succeeded,
            "skipped" => TaskState::Skipped,
            "failed" => TaskState::Failed,
            "cancelled" => TaskState::Cancelled,
            _ => return None,
        })
    }
}

/// What [`Store::finish`] did.
#[derive(Debug, Clone, Default)]
pub struct FinishReport {
    /// Tasks whose lease this worker no longer held (it expired and the
    /// task went to another worker): their outcome was dropped.
    pub lost: Vec<i64>,
    /// Tasks that will run again after a failure.
    pub retried: Vec<i64>,
    /// Attempts that ended, and how.
    pub attempts_finished: Vec<(i64, AttemptStatus)>,
}

type Tx<'a> = Transaction<'a, Any>;

/// The first column of each row, as ids.
fn first_ids(rows: &[sqlx::any::AnyRow]) -> Result<Vec<i64>> {
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

/// Collect (task id, attempt id, limit key) rows of tasks this worker still
/// held. Returns whether one of them counted against a workflow's limit:
/// its slot is free now, and waiting workers should hear of it.
fn held(rows: Vec<sqlx::any::AnyRow>, done: &mut Vec<i64>, touched: &mut Vec<i64>) -> Result<bool> {
    let mut limited = false;
    for r in rows {
        done.push(r.try_get(0)?);
        touched.push(r.try_get(1)?);
        limited |= r.try_get::<Option<String>, _>(2)?.is_some();
    }
    Ok(limited)
}

/// A barrier waits on at most this many tasks: a wide group gets joins in
/// between, so workers finishing its children do not all queue on one row.
const FAN_IN: usize = 64;

/// Rows per multi-row INSERT (SQLite allows 32,766 bound values).
const INSERT_CHUNK: usize = 500;

/// Bound values per task row of that INSERT.
const TASK_COLUMNS: usize = 16;

/// Split wide barriers: a node waiting on more than [`FAN_IN`] tasks waits
/// on joins (`name^join<k>`) that each wait on [`FAN_IN`] of them.
fn with_joins(plan: &Plan) -> Vec<crate::workflows::NewTask> {
    let mut tasks = plan.tasks.clone();
    let mut i = 0;
    while i < tasks.len() {
        if tasks[i].upstream.len() > FAN_IN {
            let upstream = std::mem::take(&mut tasks[i].upstream);
            let mut joins = Vec::new();
            for (k, chunk) in upstream.chunks(FAN_IN).enumerate() {
                let mut join = tasks[i].clone();
                join.name = format!("{}^join{k}", tasks[i].name);
                join.kind = "group".into();
                join.config = "{}".into();
                join.params = "{}".into();
                join.parent = Some(i);
                join.upstream = chunk.to_vec();
                join.on_error_of = None;
                join.retry = Default::default();
                joins.push(tasks.len());
                tasks.push(join);
            }
            tasks[i].upstream = joins;
        }
        i += 1;
    }
    tasks
}

/// Ids for `n` new tasks, taken before inserting so that rows can refer to
/// each other (parent, handler) within one multi-row INSERT.
async fn allocate_ids(store: &Store, tx: &mut Tx<'_>, n: usize) -> Result<Vec<i64>> {
    match store.dialect {
        crate::Dialect::Postgres => {
            let rows = sqlx::query("SELECT nextval('tasks_id_seq') FROM generate_series(1, $1)")
                .bind(n as i64)
                .fetch_all(&mut **tx)
                .await?;
            rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
        }
        // One writer: the ids after the largest are free until we commit.
        crate::Dialect::Sqlite => {
            let row = sqlx::query("SELECT COALESCE(max(id), 0) FROM tasks")
                .fetch_one(&mut **tx)
                .await?;
            let max: i64 = row.try_get(0)?;
            Ok((1..=n as i64).map(|k| max + k).collect())
        }
    }
}

/// Put an attempt's task graph in the queue; tasks with nothing upstream
/// are ready at once.
pub(crate) async fn insert_plan(
    store: &Store,
    tx: &mut Tx<'_>,
    attempt_id: i64,
    plan: &Plan,
    limit: Option<(&str, i64)>,
) -> Result<()> {
    insert_nodes(store, tx, attempt_id, plan, &[], limit).await?;
    settle_barriers(store, tx, attempt_id).await.map(|_| ())
}

/// Insert the nodes of `plan` but its first `existing.len()`, which are
/// tasks in the queue already (with those ids): new nodes may hang under
/// them, and what an existing node lists upstream it now waits for too.
async fn insert_nodes(
    store: &Store,
    tx: &mut Tx<'_>,
    attempt_id: i64,
    plan: &Plan,
    existing: &[i64],
    limit: Option<(&str, i64)>,
) -> Result<()> {
    let tasks = with_joins(plan);
    let known = existing.len();
    let mut ids = existing.to_vec();
    ids.extend(allocate_ids(store, tx, tasks.len() - known).await?);
    let id_of = |i: Option<usize>| i.map(|i| ids[i]);
    for (chunk_no, chunk) in tasks[known..].chunks(INSERT_CHUNK).enumerate() {
        let mut sql = String::from(
            "INSERT INTO tasks (id, attempt_id, parent_id, name, kind, config, params, state, \
             waiting, retry_limit, retry_interval, retry_backoff, ready_at, on_error_of, \
             error_root, limit_key, limit_max) VALUES ",
        );
        for k in 0..chunk.len() {
            let b = k * TASK_COLUMNS;
            if k > 0 {
                sql.push(',');
            }
            sql.push('(');
            for c in 1..=TASK_COLUMNS {
                if c == 13 {
                    sql.push_str("{now}, ");
                }
                sql.push_str(&format!("${}", b + c));
                if c < TASK_COLUMNS {
                    sql.push_str(", ");
                }
            }
            sql.push(')');
        }
        let sql = store.sql(&sql);
        let mut query = sqlx::query(&sql);
        for (k, task) in chunk.iter().enumerate() {
            let index = known + chunk_no * INSERT_CHUNK + k;
            // Barriers never run, so they never count against a limit.
            let task_limit = limit.filter(|_| task.kind != "group" && task.kind != "skip");
            let state = match task.start {
                TaskStart::Dormant => "dormant",
                TaskStart::Active if task.upstream.is_empty() => "ready",
                TaskStart::Active => "blocked",
            };
            query = query
                .bind(ids[index])
                .bind(attempt_id)
                .bind(id_of(task.parent))
                .bind(&task.name)
                .bind(&task.kind)
                .bind(&task.config)
                .bind(&task.params)
                .bind(state)
                .bind(task.upstream.len() as i64)
                .bind(task.retry.limit)
                .bind(task.retry.interval_ms)
                .bind(i64::from(task.retry.exponential))
                .bind(id_of(task.on_error_of))
                .bind(id_of(task.error_root))
                .bind(task_limit.map(|(k, _)| k))
                .bind(task_limit.map(|(_, m)| m));
        }
        query.execute(&mut **tx).await?;
    }
    let edges: Vec<(i64, i64)> = tasks
        .iter()
        .enumerate()
        .flat_map(|(index, task)| task.upstream.iter().map(move |&up| (up, index)))
        .map(|(up, down)| (ids[up], ids[down]))
        .collect();
    for chunk in edges.chunks(INSERT_CHUNK * 4) {
        let mut sql = String::from("INSERT INTO task_edges (upstream, downstream) VALUES ");
        for k in 0..chunk.len() {
            if k > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(${}, ${})", k * 2 + 1, k * 2 + 2));
        }
        let mut query = sqlx::query(&sql);
        for (up, down) in chunk {
            query = query.bind(*up).bind(*down);
        }
        query.execute(&mut **tx).await?;
    }
    for (index, task) in tasks[..known].iter().enumerate() {
        if !task.upstream.is_empty() {
            sqlx::query("UPDATE tasks SET waiting = waiting + $1 WHERE id = $2")
                .bind(task.upstream.len() as i64)
                .bind(ids[index])
                .execute(&mut **tx)
                .await?;
        }
    }
    // A big graph changes the table's shape: without fresh statistics the
    // planner expects a handful of ready tasks and sorts them all on every
    // lease, instead of walking the ready index (9 ms against 0.1 ms at 10k).
    if store.dialect == crate::Dialect::Postgres && tasks.len() >= 1000 {
        sqlx::query("ANALYZE tasks, task_edges")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Complete the barriers of an attempt that are ready, and what follows.
async fn settle_barriers(store: &Store, tx: &mut Tx<'_>, attempt_id: i64) -> Result<usize> {
    let rows = sqlx::query(&store.sql(&format!(
        "UPDATE tasks SET state = CASE WHEN kind = 'skip' THEN 'skipped' ELSE 'succeeded' END, \
         finished_at = {{now}} WHERE attempt_id = $1 AND state = 'ready' AND kind IN {BARRIERS} \
         RETURNING id"
    )))
    .bind(attempt_id)
    .fetch_all(&mut **tx)
    .await?;
    let done = first_ids(&rows)?;
    release_downstream(store, tx, done).await
}

/// Tell the tasks downstream of `done` that it finished: those with nothing
/// left to wait for become ready, and barriers among them complete too.
/// Returns how many tasks became ready for a worker.
async fn release_downstream(store: &Store, tx: &mut Tx<'_>, mut done: Vec<i64>) -> Result<usize> {
    let mut made_ready = 0;
    // The ids drive the joins: each finished task finds its edges by index.
    let lock = store.sql(
        "SELECT t.id FROM tasks t JOIN (SELECT DISTINCT e.downstream FROM {id_rows:$1} j \
         JOIN task_edges e ON e.upstream = j.id) d ON t.id = d.downstream \
         WHERE t.state = 'blocked' ORDER BY t.id{lock_t}",
    );
    let count_down = store.sql(
        "UPDATE tasks SET waiting = tasks.waiting - d.n FROM (SELECT e.downstream, \
         count(*) AS n FROM {id_rows:$1} j JOIN task_edges e ON e.upstream = j.id \
         GROUP BY e.downstream) d WHERE tasks.id = d.downstream AND tasks.state = 'blocked' \
         RETURNING tasks.id, tasks.waiting, tasks.kind",
    );
    let make_ready =
        store.sql("UPDATE tasks SET state = 'ready', ready_at = {clock} WHERE id IN {ids:$1}");
    let complete = store.sql(
        "UPDATE tasks SET state = CASE WHEN kind = 'skip' THEN 'skipped' ELSE 'succeeded' END, \
         finished_at = {now} WHERE id IN {ids:$1}",
    );
    while !done.is_empty() {
        let list = id_list(&done);
        if store.dialect == crate::Dialect::Postgres {
            // Lock in id order so two workers never deadlock on a barrier.
            sqlx::query(&lock).bind(&list).fetch_all(&mut **tx).await?;
        }
        let rows = sqlx::query(&count_down)
            .bind(&list)
            .fetch_all(&mut **tx)
            .await?;
        let mut ready = Vec::new();
        let mut barriers = Vec::new();
        for r in &rows {
            let waiting: i64 = r.try_get(1)?;
            if waiting > 0 {
                continue;
            }
            let id: i64 = r.try_get(0)?;
            let kind: String = r.try_get(2)?;
            if kind == "group" || kind == "skip" {
                barriers.push(id);
            } else {
                ready.push(id);
            }
        }
        made_ready += ready.len();
        if !ready.is_empty() {
            sqlx::query(&make_ready)
                .bind(id_list(&ready))
                .execute(&mut **tx)
                .await?;
        }
        if !barriers.is_empty() {
            sqlx::query(&complete)
                .bind(id_list(&barriers))
                .execute(&mut **tx)
                .await?;
        }
        done = barriers;
    }
    Ok(made_ready)
}

/// Resuming: tasks that succeeded in `previous` are done already in `attempt`.
pub(crate) async fn keep_succeeded(
    store: &Store,
    tx: &mut Tx<'_>,
    attempt: i64,
    previous: i64,
) -> Result<()> {
    let rows = sqlx::query(&store.sql(&format!(
        "UPDATE tasks SET state = 'succeeded', finished_at = {{now}}, \
         summary = (SELECT p.summary FROM tasks p WHERE p.attempt_id = $2 AND p.name = tasks.name) \
         WHERE attempt_id = $1 AND kind NOT IN {NOT_KEPT} AND state IN ('ready', 'blocked') \
         AND name IN (SELECT name FROM tasks WHERE attempt_id = $2 AND state = 'succeeded') \
         RETURNING id"
    )))
    .bind(attempt)
    .bind(previous)
    .fetch_all(&mut **tx)
    .await?;
    let done = first_ids(&rows)?;
    release_downstream(store, tx, done).await.map(|_| ())
}

/// Wake listening workers when the transaction commits.
pub(crate) async fn notify(store: &Store, tx: &mut Tx<'_>) -> Result<()> {
    if store.dialect == crate::Dialect::Postgres {
        sqlx::query(&format!("SELECT pg_notify('{READY_CHANNEL}', '')"))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// An attempt failed at `task`: cancel what has not started, and wake the
/// `on_error` handlers of the task and of every group around it.
async fn fail_attempt(store: &Store, tx: &mut Tx<'_>, attempt: i64, task: i64) -> Result<()> {
    sqlx::query("UPDATE attempts SET failed = 1 WHERE id = $1")
        .bind(attempt)
        .execute(&mut **tx)
        .await?;
    sqlx::query(&store.sql(
        "UPDATE tasks SET state = 'cancelled', finished_at = {now} WHERE attempt_id = $1 \
         AND state IN ('blocked', 'ready') AND error_root IS NULL",
    ))
    .bind(attempt)
    .execute(&mut **tx)
    .await?;
    sqlx::query(&store.sql(
        "WITH RECURSIVE around (id, parent_id) AS ( \
           SELECT id, parent_id FROM tasks WHERE id = $1 \
           UNION ALL SELECT t.id, t.parent_id FROM tasks t JOIN around a ON t.id = a.parent_id) \
         UPDATE tasks SET state = CASE WHEN waiting = 0 THEN 'ready' ELSE 'blocked' END, \
           ready_at = {now} \
         WHERE attempt_id = $2 AND state = 'dormant' AND error_root IN \
           (SELECT id FROM tasks WHERE attempt_id = $2 AND on_error_of IN (SELECT id FROM around))",
    ))
    .bind(task)
    .bind(attempt)
    .execute(&mut **tx)
    .await?;
    settle_barriers(store, tx, attempt).await.map(|_| ())
}

/// End the attempt if nothing in it is left to run.
async fn close_if_done(
    store: &Store,
    tx: &mut Tx<'_>,
    attempt: i64,
) -> Result<Option<AttemptStatus>> {
    let row = sqlx::query(&store.sql(
        "UPDATE attempts SET finished_at = {now}, status = CASE WHEN kill_requested = 1 \
         THEN 'killed' WHEN failed = 1 THEN 'failed' ELSE 'succeeded' END \
         WHERE id = $1 AND status = 'running' AND NOT EXISTS (SELECT 1 FROM tasks \
         WHERE attempt_id = $1 AND state IN ('blocked', 'ready', 'running')) RETURNING status",
    ))
    .bind(attempt)
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        Some(r) => {
            let status: String = r.try_get(0)?;
            Ok(Some(match status.as_str() {
                "killed" => AttemptStatus::Killed,
                "failed" => AttemptStatus::Failed,
                _ => AttemptStatus::Succeeded,
            }))
        }
        None => Ok(None),
    }
}

/// The advisory lock that serialises leases under a fleet-wide limit.
const GLOBAL_LIMIT_LOCK: i64 = 0x51_75_69_63_65_00_00_01;

/// Lease up to `max` ready tasks: those under no workflow limit (`key`
/// None) or those of one limited workflow.
async fn lease_where<'e, E>(
    store: &Store,
    executor: E,
    owner: &str,
    max: i64,
    ttl_ms: i64,
    attempt: Option<i64>,
    key: Option<&str>,
) -> Result<Vec<LeasedTask>>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let which = if key.is_some() {
        "limit_key = $5"
    } else {
        "limit_key IS NULL AND $5 IS NULL"
    };
    let rows = sqlx::query(&store.sql(&format!(
        "UPDATE tasks SET state = 'running', lease_owner = $1, lease_expires = {{now}} + $2, \
         leased_at = {{clock}}, started_at = COALESCE(started_at, {{clock}}), \
         lease_count = lease_count + 1 \
         WHERE id IN (SELECT id FROM tasks WHERE state = 'ready' AND ready_at <= {{now}} \
         AND ($4 IS NULL OR attempt_id = $4) AND {which} ORDER BY ready_at, id \
         LIMIT $3{{skip_locked}}) \
         RETURNING id, attempt_id, name, kind, config, params, retries, lease_count, \
         ready_at, leased_at",
    )))
    .bind(owner)
    .bind(ttl_ms)
    .bind(max)
    .bind(attempt)
    .bind(key)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(LeasedTask {
                id: r.try_get(0)?,
                attempt_id: r.try_get(1)?,
                name: r.try_get(2)?,
                kind: r.try_get(3)?,
                config: r.try_get(4)?,
                params: r.try_get(5)?,
                retries: r.try_get(6)?,
                lease: r.try_get(7)?,
                ready_at: r.try_get(8)?,
                leased_at: r.try_get(9)?,
            })
        })
        .collect()
}

impl Store {
    /// Lease up to `max` ready tasks for `owner`, for `ttl_ms`.
    /// With `attempt`, only that attempt's tasks (a workflow run in place
    /// by `sluice workflow run`).
    ///
    /// Tasks under no limit are leased by one statement that never waits on
    /// another worker. Tasks of a workflow with `max_running`, and every
    /// task when the store has a fleet-wide limit ([`Store::with_max_running`]),
    /// are leased in a transaction that first counts what runs under the
    /// same limit, holding a lock on that limit so two workers never both
    /// take its last slot.
    ///
    /// # Errors
    /// On a database error.
    pub async fn lease(
        &self,
        owner: &str,
        max: i64,
        ttl_ms: i64,
        attempt: Option<i64>,
    ) -> Result<Vec<LeasedTask>> {
        if max <= 0 {
            return Ok(Vec::new());
        }
        let mut tasks = if self.max_running.is_none() {
            let mut tasks =
                lease_where(self, &self.pool, owner, max, ttl_ms, attempt, None).await?;
            let left = max - tasks.len() as i64;
            if left > 0 && self.has_limited_ready(attempt).await? {
                tasks.extend(self.lease_limited(owner, left, ttl_ms, attempt).await?);
            }
            tasks
        } else {
            self.lease_limited(owner, max, ttl_ms, attempt).await?
        };
        tasks.sort_by_key(|t| (t.ready_at, t.id));
        Ok(tasks)
    }

    /// Whether a task under a workflow's limit is ready (a look at a small
    /// partial index, so workflows without limits pay next to nothing).
    async fn has_limited_ready(&self, attempt: Option<i64>) -> Result<bool> {
        let row = sqlx::query(&self.sql(
            "SELECT count(*) FROM (SELECT 1 FROM tasks WHERE state = 'ready' \
             AND limit_key IS NOT NULL AND ready_at <= {now} AND ($1 IS NULL OR attempt_id = $1) \
             LIMIT 1) x",
        ))
        .bind(attempt)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    }

    /// Lease under limits: the fleet-wide one (if set) over every task, and
    /// each workflow's own over its tasks.
    async fn lease_limited(
        &self,
        owner: &str,
        max: i64,
        ttl_ms: i64,
        attempt: Option<i64>,
    ) -> Result<Vec<LeasedTask>> {
        let mut tx = self.pool.begin().await?;
        let mut room = max;
        let mut tasks = Vec::new();
        if let Some(global) = self.max_running {
            if self.dialect == crate::Dialect::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(GLOBAL_LIMIT_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let running: i64 = sqlx::query("SELECT count(*) FROM tasks WHERE state = 'running'")
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            room = room.min(global - running);
            if room <= 0 {
                tx.commit().await?;
                return Ok(tasks);
            }
            tasks = lease_where(self, &mut *tx, owner, room, ttl_ms, attempt, None).await?;
            room -= tasks.len() as i64;
        }
        // The limited workflows with ready tasks, the longest waiting first.
        let keys = sqlx::query(&self.sql(
            "SELECT limit_key, max(limit_max), min(ready_at) AS first FROM tasks \
             WHERE state = 'ready' AND limit_key IS NOT NULL AND ready_at <= {now} \
             AND ($1 IS NULL OR attempt_id = $1) GROUP BY limit_key ORDER BY first LIMIT 64",
        ))
        .bind(attempt)
        .fetch_all(&mut *tx)
        .await?;
        for key in keys {
            if room <= 0 {
                break;
            }
            let name: String = key.try_get(0)?;
            let limit: i64 = key.try_get(1)?;
            if self.dialect == crate::Dialect::Postgres {
                // Another worker leasing this workflow right now has the
                // lock: leave its tasks to it rather than wait.
                let locked: bool =
                    sqlx::query("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
                        .bind(&name)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get(0)?;
                if !locked {
                    continue;
                }
            }
            let running: i64 = sqlx::query(
                "SELECT count(*) FROM tasks WHERE state = 'running' AND limit_key = $1",
            )
            .bind(&name)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            let take = room.min(limit - running);
            if take <= 0 {
                continue;
            }
            let got =
                lease_where(self, &mut *tx, owner, take, ttl_ms, attempt, Some(&name)).await?;
            room -= got.len() as i64;
            tasks.extend(got);
        }
        tx.commit().await?;
        Ok(tasks)
    }

    /// Add the tasks a running task generated (the rounds of a
    /// `for_each_row` loop) to its attempt, in one transaction, while
    /// `owner` still holds `task`'s lease. Node 0 of `plan` stands for the
    /// task's parent (the loop's group, which then waits for what node 0
    /// lists upstream as well), node 1 for its handler root, if it is in
    /// one; the rest are new. They take the task's concurrency limit, and
    /// in a resumed attempt those that succeeded before are kept.
    ///
    /// A task adds its tasks once: a second lease of it (its first worker
    /// died after adding them) adds nothing.
    ///
    /// # Errors
    /// On a database error (nothing is added).
    pub async fn add_generated(
        &self,
        owner: &str,
        task: i64,
        plan: &Plan,
        summary: &str,
    ) -> Result<Generated> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&self.sql(
            "SELECT t.attempt_id, t.parent_id, t.error_root, t.limit_key, t.limit_max, \
             t.summary, a.failed, a.kill_requested, a.resumed_from FROM tasks t \
             JOIN attempts a ON a.id = t.attempt_id \
             WHERE t.id = $1 AND t.lease_owner = $2 AND t.state = 'running'{lock_t}",
        ))
        .bind(task)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Generated::Lost);
        };
        let attempt: i64 = row.try_get(0)?;
        let parent: Option<i64> = row.try_get(1)?;
        let error_root: Option<i64> = row.try_get(2)?;
        let limit_key: Option<String> = row.try_get(3)?;
        let limit_max: Option<i64> = row.try_get(4)?;
        let done_before: Option<String> = row.try_get(5)?;
        let failed: i64 = row.try_get(6)?;
        let killed: i64 = row.try_get(7)?;
        let resumed_from: Option<i64> = row.try_get(8)?;
        if done_before.is_some() {
            return Ok(Generated::AlreadyAdded);
        }
        if failed == 1 || killed == 1 {
            return Ok(Generated::AttemptOver);
        }
        let Some(parent) = parent else {
            return Err(crate::Error::Data(format!(
                "task {task} generated tasks but has no group to put them in"
            )));
        };
        let existing = [parent, error_root.unwrap_or(parent)];
        let limit = limit_key.as_deref().zip(limit_max);
        insert_nodes(self, &mut tx, attempt, plan, &existing, limit).await?;
        sqlx::query("UPDATE tasks SET summary = $1 WHERE id = $2")
            .bind(summary)
            .bind(task)
            .execute(&mut *tx)
            .await?;
        if let Some(previous) = resumed_from {
            keep_succeeded(self, &mut tx, attempt, previous).await?;
        }
        settle_barriers(self, &mut tx, attempt).await?;
        notify(self, &mut tx).await?;
        tx.commit().await?;
        self.wake_workers();
        Ok(Generated::Added(
            plan.tasks.len().saturating_sub(existing.len()),
        ))
    }

    /// Tasks ready now (queue depth), and the age in ms of the oldest.
    ///
    /// # Errors
    /// On a database error.
    pub async fn queue_depth(&self) -> Result<(i64, i64)> {
        let row = sqlx::query(&self.sql(
            "SELECT count(*), COALESCE({now} - min(ready_at), 0) FROM tasks \
             WHERE state = 'ready' AND ready_at <= {now}",
        ))
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// Extend every lease `owner` holds by `ttl_ms`. Returns the tasks it
    /// holds whose attempt was killed: the worker stops them.
    ///
    /// # Errors
    /// On a database error.
    pub async fn heartbeat(&self, owner: &str, ttl_ms: i64) -> Result<Vec<i64>> {
        sqlx::query(&self.sql(
            "UPDATE tasks SET lease_expires = {now} + $2 WHERE lease_owner = $1 \
             AND state = 'running'",
        ))
        .bind(owner)
        .bind(ttl_ms)
        .execute(&self.pool)
        .await?;
        let rows = sqlx::query(
            "SELECT t.id FROM tasks t JOIN attempts a ON a.id = t.attempt_id \
             WHERE t.lease_owner = $1 AND t.state = 'running' AND a.kill_requested = 1",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect::<Result<Vec<i64>>>()
    }

    /// Report how leased tasks ended, in one transaction.
    ///
    /// # Errors
    /// On a database error (nothing of the batch is applied).
    pub async fn finish(&self, owner: &str, outcomes: &[(i64, Outcome)]) -> Result<FinishReport> {
        let mut report = FinishReport::default();
        let mut tx = self.pool.begin().await?;
        let mut touched: Vec<i64> = Vec::new();
        let mut succeeded_plain = Vec::new();
        let mut released = Vec::new();
        let mut cancelled = Vec::new();
        let mut done: Vec<i64> = Vec::new();
        let mut woke_handlers = false;
        // A finished task under a limit frees a slot another worker may be
        // waiting for; with a fleet-wide limit, every finished task does.
        let mut freed_limited = self.max_running.is_some();
        for (id, outcome) in outcomes {
            match outcome {
                Outcome::Succeeded { summary: None } => succeeded_plain.push(*id),
                Outcome::Succeeded {
                    summary: Some(summary),
                } => {
                    let rows = sqlx::query(&self.sql(
                        "UPDATE tasks SET state = 'succeeded', finished_at = {now}, \
                         lease_owner = NULL, summary = $3 WHERE id = $1 AND lease_owner = $2 \
                         AND state = 'running' RETURNING id, attempt_id, limit_key",
                    ))
                    .bind(id)
                    .bind(owner)
                    .bind(summary)
                    .fetch_all(&mut *tx)
                    .await?;
                    freed_limited |= held(rows, &mut done, &mut touched)?;
                }
                Outcome::Released => released.push(*id),
                Outcome::Cancelled => cancelled.push(*id),
                Outcome::Failed { error, retryable } => {
                    let row = sqlx::query(
                        "SELECT attempt_id, retries, retry_limit, retry_interval, retry_backoff \
                         FROM tasks WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                    )
                    .bind(id)
                    .bind(owner)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else {
                        report.lost.push(*id);
                        continue;
                    };
                    let attempt: i64 = row.try_get(0)?;
                    let retries: i64 = row.try_get(1)?;
                    let limit: i64 = row.try_get(2)?;
                    let interval: i64 = row.try_get(3)?;
                    let exponential: i64 = row.try_get(4)?;
                    touched.push(attempt);
                    if *retryable && retries < limit {
                        let wait = if exponential == 1 {
                            interval.saturating_mul(1 << retries.min(20))
                        } else {
                            interval
                        };
                        sqlx::query(&self.sql(
                            "UPDATE tasks SET state = 'ready', lease_owner = NULL, \
                             retries = retries + 1, ready_at = {now} + $2, error = $3 \
                             WHERE id = $1",
                        ))
                        .bind(id)
                        .bind(wait)
                        .bind(error)
                        .execute(&mut *tx)
                        .await?;
                        report.retried.push(*id);
                    } else {
                        sqlx::query(&self.sql(
                            "UPDATE tasks SET state = 'failed', lease_owner = NULL, \
                             finished_at = {now}, error = $2 WHERE id = $1",
                        ))
                        .bind(id)
                        .bind(error)
                        .execute(&mut *tx)
                        .await?;
                        fail_attempt(self, &mut tx, attempt, *id).await?;
                        woke_handlers = true;
                    }
                }
            }
        }
        if !succeeded_plain.is_empty() {
            let rows = sqlx::query(&self.sql(
                "UPDATE tasks SET state = 'succeeded', finished_at = {now}, lease_owner = NULL \
                 WHERE id IN {ids:$1} AND lease_owner = $2 AND state = 'running' \
                 RETURNING id, attempt_id, limit_key",
            ))
            .bind(id_list(&succeeded_plain))
            .bind(owner)
            .fetch_all(&mut *tx)
            .await?;
            freed_limited |= held(rows, &mut done, &mut touched)?;
        }
        for (ids, sql) in [
            (
                &released,
                "UPDATE tasks SET state = 'ready', lease_owner = NULL, ready_at = {now} \
                 WHERE id IN {ids:$1} AND lease_owner = $2 AND state = 'running' \
                 RETURNING id, attempt_id, limit_key",
            ),
            (
                &cancelled,
                "UPDATE tasks SET state = 'cancelled', lease_owner = NULL, finished_at = {now}, \
                 error = 'attempt killed' WHERE id IN {ids:$1} AND lease_owner = $2 \
                 AND state = 'running' RETURNING id, attempt_id, limit_key",
            ),
        ] {
            if ids.is_empty() {
                continue;
            }
            let rows = sqlx::query(&self.sql(sql))
                .bind(id_list(ids))
                .bind(owner)
                .fetch_all(&mut *tx)
                .await?;
            let mut kept = Vec::new();
            freed_limited |= held(rows, &mut kept, &mut touched)?;
            report
                .lost
                .extend(ids.iter().filter(|id| !kept.contains(id)));
        }
        let mut expected: Vec<i64> = succeeded_plain;
        expected.extend(outcomes.iter().filter_map(|(id, o)| match o {
            Outcome::Succeeded { summary: Some(_) } => Some(*id),
            _ => None,
        }));
        report
            .lost
            .extend(expected.iter().filter(|id| !done.contains(id)));
        let made_ready = release_downstream(self, &mut tx, done).await?;
        touched.sort_unstable();
        touched.dedup();
        // Only an attempt whose root is done, or that failed or was killed,
        // can have ended: the others need no look at all their tasks.
        if !touched.is_empty() {
            let rows = sqlx::query(&self.sql(
                "SELECT a.id FROM attempts a WHERE a.id IN {ids:$1} AND a.status = 'running' \
                 AND (a.failed = 1 OR a.kill_requested = 1 OR EXISTS (SELECT 1 FROM tasks t \
                 WHERE t.attempt_id = a.id AND t.parent_id IS NULL AND t.state <> 'blocked'))",
            ))
            .bind(id_list(&touched))
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                let attempt: i64 = r.try_get(0)?;
                if let Some(status) = close_if_done(self, &mut tx, attempt).await? {
                    report.attempts_finished.push((attempt, status));
                }
            }
        }
        // NOTIFY serialises commits in PostgreSQL: only when there is news.
        let news = made_ready > 0
            || woke_handlers
            || freed_limited
            || !report.retried.is_empty()
            || !released.is_empty();
        if news {
            notify(self, &mut tx).await?;
        }
        tx.commit().await?;
        if news {
            self.wake_workers();
        }
        Ok(report)
    }

    /// Make tasks whose lease expired ready again (a retry), or failed once
    /// they have lost `max_expiries` workers. Returns the tasks reclaimed.
    ///
    /// # Errors
    /// On a database error.
    pub async fn reclaim_expired(&self, max_expiries: i64) -> Result<Vec<i64>> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(&self.sql(
            "UPDATE tasks SET lease_expiries = lease_expiries + 1, retries = retries + 1, \
             state = CASE WHEN lease_expiries + 1 >= $1 THEN 'failed' ELSE 'ready' END, \
             finished_at = CASE WHEN lease_expiries + 1 >= $1 THEN {now} ELSE NULL END, \
             error = 'the lease of worker ' || lease_owner || ' expired (worker lost)', \
             lease_owner = NULL, ready_at = {now} \
             WHERE id IN (SELECT id FROM tasks WHERE state = 'running' AND lease_expires < {now} \
             ORDER BY id LIMIT 1000{skip_locked}) RETURNING id, attempt_id, state, error",
        ))
        .bind(max_expiries)
        .fetch_all(&mut *tx)
        .await?;
        let mut reclaimed = Vec::new();
        let mut touched = Vec::new();
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            let attempt: i64 = r.try_get(1)?;
            let state: String = r.try_get(2)?;
            let lost: Option<String> = r.try_get(3)?;
            // The dead worker's runs of this task end with it: failed, and
            // saying why, rather than `running` forever.
            sqlx::query(&self.sql(
                "UPDATE runs SET status = 'failed', finished_at = {now_text}, error = $1 \
                 WHERE task_id = $2 AND status = 'running'",
            ))
            .bind(lost.unwrap_or_else(|| "the worker's lease expired".into()))
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if state == "failed" {
                fail_attempt(self, &mut tx, attempt, id).await?;
                touched.push(attempt);
            }
            reclaimed.push(id);
        }
        for attempt in touched {
            close_if_done(self, &mut tx, attempt).await?;
        }
        if !reclaimed.is_empty() {
            notify(self, &mut tx).await?;
        }
        tx.commit().await?;
        if !reclaimed.is_empty() {
            self.wake_workers();
        }
        Ok(reclaimed)
    }

    /// Kill an attempt: what has not started is cancelled; workers stop
    /// what is running at their next heartbeat.
    ///
    /// # Errors
    /// On a database error.
    pub async fn kill_attempt(&self, attempt: i64) -> Result<bool> {
        crate::error::retry_contention(|| self.kill_attempt_once(attempt)).await
    }

    async fn kill_attempt_once(&self, attempt: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let killed = sqlx::query(
            "UPDATE attempts SET kill_requested = 1 WHERE id = $1 AND status = 'running'",
        )
        .bind(attempt)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        sqlx::query(&self.sql(
            "UPDATE tasks SET state = 'cancelled', finished_at = {now}, error = 'attempt killed' \
             WHERE attempt_id = $1 AND state IN ('blocked', 'ready', 'dormant')",
        ))
        .bind(attempt)
        .execute(&mut *tx)
        .await?;
        close_if_done(self, &mut tx, attempt).await?;
        tx.commit().await?;
        Ok(killed)
    }

    /// Record that a worker is alive (and whether it is stopping).
    ///
    /// # Errors
    /// On a database error.
    pub async fn worker_alive(
        &self,
        id: &str,
        host: &str,
        roles: &str,
        stopping: bool,
    ) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO workers (id, host, roles, started_at, heartbeat_at, stopping) \
             VALUES ($1, $2, $3, {now}, {now}, $4) ON CONFLICT (id) DO UPDATE SET \
             heartbeat_at = excluded.heartbeat_at, stopping = excluded.stopping",
        ))
        .bind(id)
        .bind(host)
        .bind(roles)
        .bind(i64::from(stopping))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Wake workers in this process (other processes hear NOTIFY).
    pub fn wake_workers(&self) {
        self.ready.notify_waiters();
    }

    /// What this process's workers wait on between leases.
    pub fn ready_signal(&self) -> Arc<tokio::sync::Notify> {
        self.ready.clone()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::workflows::{NewAttempt, NewTask, RetryPolicy};
    use crate::{Error, Pruned};

    fn task(name: &str, kind: &str, parent: Option<usize>, upstream: Vec<usize>) -> NewTask {
        NewTask {
            parent,
            name: name.into(),
            kind: kind.into(),
            config: "{}".into(),
            params: "{}".into(),
            upstream,
            retry: RetryPolicy::default(),
            start: TaskStart::Active,
            on_error_of: None,
            error_root: None,
        }
    }

    /// root(group) <- [a -> g(group: b, c in parallel) -> z], handler h on root.
    fn plan() -> Plan {
        let mut t = vec![
            task("+w", "group", None, vec![5]),
            task("+w+a", "echo", Some(0), vec![]),
            task("+w+g", "group", Some(0), vec![3, 4]),
            task("+w+g+b", "echo", Some(2), vec![1]),
            task("+w+g+c", "echo", Some(2), vec![1]),
            task("+w+z", "echo", Some(0), vec![2]),
            task("+w^error", "group", Some(0), vec![7]),
            task("+w^error+h", "echo", Some(6), vec![]),
        ];
        t[5].retry = RetryPolicy {
            limit: 1,
            interval_ms: 0,
            exponential: false,
        };
        for i in [6, 7] {
            t[i].start = TaskStart::Dormant;
            t[i].error_root = Some(6);
        }
        t[6].on_error_of = Some(0);
        Plan { tasks: t }
    }

    async fn start(store: &Store, plan: &Plan, resume_from: Option<i64>) -> i64 {
        let project = store.ensure_project("p").await.unwrap();
        store
            .start_attempt(&NewAttempt {
                project_id: project,
                workflow: "w",
                session_time: 1000,
                revision_id: None,
                params: "{}",
                plan,
                only_new_session: false,
                resume_from,
                max_running: None,
            })
            .await
            .unwrap()
            .unwrap()
            .id
    }

    async fn names(store: &Store, owner: &str) -> Vec<(i64, String)> {
        let mut got: Vec<(i64, String)> = store
            .lease(owner, 10, 60_000, None)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect();
        got.sort_by(|a, b| a.1.cmp(&b.1));
        got
    }

    fn ok() -> Outcome {
        Outcome::Succeeded { summary: None }
    }

    async fn state(store: &Store, attempt: i64, name: &str) -> String {
        store
            .tasks(attempt)
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.name == name)
            .unwrap()
            .state
    }

    /// The whole state machine, on one backend.
    async fn scenario(store: Store) {
        let attempt = start(&store, &plan(), None).await;
        // Only `a` is ready; groups are never leased.
        let first = names(&store, "w1").await;
        assert_eq!(
            first.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
            ["+w+a"]
        );
        assert!(names(&store, "w2").await.is_empty());
        store.finish("w1", &[(first[0].0, ok())]).await.unwrap();
        // b and c in parallel, to two workers.
        let bc = store.lease("w1", 1, 60_000, None).await.unwrap();
        let other = store.lease("w2", 5, 60_000, None).await.unwrap();
        assert_eq!(bc.len() + other.len(), 2);
        // A finish from a worker that does not hold the lease is dropped.
        let report = store.finish("w2", &[(bc[0].id, ok())]).await.unwrap();
        assert_eq!(report.lost, vec![bc[0].id]);
        assert!(store.task_is_running(bc[0].id).await.unwrap());
        store.finish("w1", &[(bc[0].id, ok())]).await.unwrap();
        assert!(!store.task_is_running(bc[0].id).await.unwrap());
        assert!(
            names(&store, "w3").await.is_empty(),
            "z ran before the group finished"
        );
        store.finish("w2", &[(other[0].id, ok())]).await.unwrap();
        assert_eq!(state(&store, attempt, "+w+g").await, "succeeded");
        // z fails once (retried), then again: the attempt fails, the handler wakes.
        let z = names(&store, "w1").await;
        assert_eq!(z[0].1, "+w+z");
        let fail = || Outcome::Failed {
            error: "boom".into(),
            retryable: true,
        };
        let r = store.finish("w1", &[(z[0].0, fail())]).await.unwrap();
        assert_eq!(r.retried, vec![z[0].0]);
        let z = names(&store, "w1").await;
        let r = store.finish("w1", &[(z[0].0, fail())]).await.unwrap();
        assert!(r.attempts_finished.is_empty(), "the handler has yet to run");
        assert_eq!(state(&store, attempt, "+w+z").await, "failed");
        let h = names(&store, "w1").await;
        assert_eq!(h[0].1, "+w^error+h");
        let r = store.finish("w1", &[(h[0].0, ok())]).await.unwrap();
        assert_eq!(r.attempts_finished, vec![(attempt, AttemptStatus::Failed)]);
        assert_eq!(state(&store, attempt, "+w").await, "cancelled");

        // Resume: what succeeded is not run again; z is.
        let again = start(&store, &plan(), Some(attempt)).await;
        let z = names(&store, "w1").await;
        assert_eq!(z.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(), ["+w+z"]);
        let r = store.finish("w1", &[(z[0].0, ok())]).await.unwrap();
        assert_eq!(r.attempts_finished, vec![(again, AttemptStatus::Succeeded)]);
        assert_eq!(state(&store, again, "+w^error+h").await, "dormant");

        // An expired lease: reclaimed as a retry, then failed after the limit.
        let third = start(&store, &plan(), None).await;
        let a = store.lease("dead", 1, 1, None).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(store.reclaim_expired(2).await.unwrap(), vec![a[0].id]);
        let a2 = store.lease("dead", 1, 1, Some(third)).await.unwrap();
        assert_eq!((a2[0].id, a2[0].retries, a2[0].lease), (a[0].id, 1, 2));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        store.reclaim_expired(2).await.unwrap();
        assert_eq!(state(&store, third, "+w+a").await, "failed");
        // The handler runs; then the attempt is failed.
        let h = store.lease("w1", 5, 60_000, Some(third)).await.unwrap();
        assert_eq!(h[0].name, "+w^error+h");
        store.finish("w1", &[(h[0].id, ok())]).await.unwrap();
        assert_eq!(
            store.attempt(third).await.unwrap().status,
            AttemptStatus::Failed
        );

        // Kill: waiting tasks are cancelled, a running one when reported.
        let fourth = start(&store, &plan(), None).await;
        let a = store.lease("w1", 5, 60_000, Some(fourth)).await.unwrap();
        assert!(store.kill_attempt(fourth).await.unwrap());
        assert_eq!(store.heartbeat("w1", 60_000).await.unwrap(), vec![a[0].id]);
        let r = store
            .finish("w1", &[(a[0].id, Outcome::Cancelled)])
            .await
            .unwrap();
        assert_eq!(r.attempts_finished, vec![(fourth, AttemptStatus::Killed)]);

        // Released at shutdown: ready again at once, no retry counted.
        let fifth = start(&store, &plan(), None).await;
        let a = store.lease("w1", 5, 60_000, Some(fifth)).await.unwrap();
        store
            .finish("w1", &[(a[0].id, Outcome::Released)])
            .await
            .unwrap();
        let a2 = store.lease("w2", 5, 60_000, Some(fifth)).await.unwrap();
        assert_eq!((a2[0].id, a2[0].retries, a2[0].lease), (a[0].id, 0, 2));
        assert_eq!(store.queue_depth().await.unwrap().0, 0);
    }

    #[tokio::test]
    async fn wide_groups_wait_through_joins() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("q.db")).await.unwrap();
        let mut tasks = vec![task("+w", "group", None, (1..=200).collect())];
        tasks.extend((0..200).map(|i| task(&format!("+w+t{i}"), "echo", Some(0), vec![])));
        let attempt = start(&store, &Plan { tasks }, None).await;
        let all = store.tasks(attempt).await.unwrap();
        // 200 children: four joins of at most 64, and the group waits on them.
        assert_eq!(all.iter().filter(|t| t.name.contains("^join")).count(), 4);
        let edges: i64 = sqlx::query("SELECT count(*) FROM task_edges WHERE downstream = $1")
            .bind(all[0].id)
            .fetch_one(&store.pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(edges, 4);
        let leased = store.lease("w", 500, 60_000, None).await.unwrap();
        assert_eq!(leased.len(), 200);
        let outcomes: Vec<(i64, Outcome)> = leased.iter().map(|t| (t.id, ok())).collect();
        let r = store.finish("w", &outcomes).await.unwrap();
        assert_eq!(
            r.attempts_finished,
            vec![(attempt, AttemptStatus::Succeeded)]
        );
    }

    #[tokio::test]
    async fn queue_state_machine_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        scenario(Store::open_sqlite(&dir.path().join("q.db")).await.unwrap()).await;
    }

    /// The same on PostgreSQL, when the test database is given (as
    /// `cargo xtask test` does).
    #[tokio::test]
    async fn queue_state_machine_on_postgres() {
        if let Some(url) = fresh_postgres("sluice_store_queue").await {
            scenario(Store::open(&url).await.unwrap()).await;
        }
    }

    /// A root group over `n` tasks that are all ready at once.
    fn wide(n: usize) -> Plan {
        let mut t = vec![task("+w", "group", None, (1..=n).collect())];
        for i in 1..=n {
            t.push(task(&format!("+w+t{i}"), "echo", Some(0), vec![]));
        }
        Plan { tasks: t }
    }

    async fn start_limited(
        store: &Store,
        workflow: &str,
        at: i64,
        n: usize,
        max: Option<i64>,
    ) -> i64 {
        let project = store.ensure_project("p").await.unwrap();
        store
            .start_attempt(&NewAttempt {
                project_id: project,
                workflow,
                session_time: at,
                revision_id: None,
                params: "{}",
                plan: &wide(n),
                only_new_session: false,
                resume_from: None,
                max_running: max,
            })
            .await
            .unwrap()
            .unwrap()
            .id
    }

    /// `max_running` holds across sessions and workers; the fleet-wide
    /// limit holds over everything; a finished task frees its slot.
    async fn limits(store: Store) {
        // Two sessions of a workflow limited to 2, and one unlimited.
        let l1 = start_limited(&store, "limited", 1000, 6, Some(2)).await;
        let l2 = start_limited(&store, "limited", 2000, 6, Some(2)).await;
        start_limited(&store, "free", 1000, 3, None).await;
        let first = store.lease("w1", 10, 60_000, None).await.unwrap();
        let (limited, free): (Vec<&LeasedTask>, Vec<&LeasedTask>) = first
            .iter()
            .partition(|t| t.attempt_id == l1 || t.attempt_id == l2);
        assert_eq!((limited.len(), free.len()), (2, 3), "{first:?}");
        assert!(
            store
                .lease("w2", 10, 60_000, None)
                .await
                .unwrap()
                .is_empty()
        );
        // One limited task ends: exactly one more may start.
        store.finish("w1", &[(limited[0].id, ok())]).await.unwrap();
        let next = store.lease("w2", 10, 60_000, None).await.unwrap();
        assert_eq!(next.len(), 1);
        assert!([l1, l2].contains(&next[0].attempt_id));
        assert!(
            store
                .lease("w2", 10, 60_000, None)
                .await
                .unwrap()
                .is_empty()
        );

        // A fleet-wide limit of 4 with 4 running (3 free, 1 limited):
        // nothing more, though the workflow's own limit has room.
        store.finish("w2", &[(next[0].id, ok())]).await.unwrap();
        assert_eq!(running(&store).await, 4);
        let capped = store.clone().with_max_running(Some(4));
        assert!(
            capped
                .lease("w3", 10, 60_000, None)
                .await
                .unwrap()
                .is_empty()
        );
        let done: Vec<(i64, Outcome)> = free.iter().map(|t| (t.id, ok())).collect();
        capped.finish("w1", &done).await.unwrap();
        // 1 runs now: the fleet allows 3 more, the workflow's limit 1.
        let more = capped.lease("w3", 10, 60_000, None).await.unwrap();
        assert_eq!(more.len(), 1);
        assert_eq!(running(&store).await, 2);
    }

    async fn running(store: &Store) -> i64 {
        sqlx::query("SELECT count(*) FROM tasks WHERE state = 'running'")
            .fetch_one(&store.pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    #[tokio::test]
    async fn limits_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        limits(Store::open_sqlite(&dir.path().join("q.db")).await.unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn limits_on_postgres() {
        let Some(url) = fresh_postgres("sluice_store_limits").await else {
            return;
        };
        limits(Store::open(&url).await.unwrap()).await;
        // Sixteen workers at once against a limit of 3: never more than 3,
        // whoever wins the race.
        let store = Store::open(&url).await.unwrap();
        start_limited(&store, "race", 1000, 50, Some(3)).await;
        let mut racers = tokio::task::JoinSet::new();
        for w in 0..16 {
            let store = store.clone();
            racers.spawn(async move {
                store
                    .lease(&format!("racer{w}"), 5, 60_000, None)
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|t| t.name.starts_with("+w+t"))
                    .count()
            });
        }
        let mut won = 0;
        while let Some(n) = racers.join_next().await {
            won += n.unwrap();
        }
        let key_running: i64 = sqlx::query(
            "SELECT count(*) FROM tasks t JOIN attempts a ON a.id = t.attempt_id \
             JOIN sessions s ON s.id = a.session_id WHERE s.workflow = 'race' \
             AND t.state = 'running'",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
        assert_eq!(key_running, 3, "the limit of 3 was broken ({won} leased)");
    }

    /// A fresh database on the test PostgreSQL, when one is given (as
    /// `cargo xtask test` does).
    pub(crate) async fn fresh_postgres(name: &str) -> Option<String> {
        let Ok(base) = std::env::var("SLUICE_TEST_POSTGRES_URL") else {
            eprintln!("SLUICE_TEST_POSTGRES_URL is not set: skipped");
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
        Some(format!("{}/{name}", &base[..base.rfind('/').unwrap()]))
    }

    /// Rounds added by a running task: once, under its lease, and the loop's
    /// group waits for them.
    #[tokio::test]
    async fn generated_tasks_are_added_once_and_the_group_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("q.db")).await.unwrap();
        let plan = Plan {
            tasks: vec![
                task("+w", "group", None, vec![1]),
                task("+w+loop", "group", Some(0), vec![2]),
                task("+w+loop^rows", "for_each_row", Some(1), vec![]),
            ],
        };
        let attempt = start(&store, &plan, None).await;
        let leased = store.lease("w1", 10, 1, None).await.unwrap();
        assert_eq!(leased.len(), 1);
        let generator = leased[0].id;
        let rounds = Plan {
            tasks: vec![
                task("+w+loop", "group", None, vec![2, 3]),
                task("^error", "group", None, vec![]),
                task("+w+loop+[r=a]", "echo", Some(0), vec![]),
                task("+w+loop+[r=b]", "echo", Some(0), vec![]),
            ],
        };
        let added = store
            .add_generated("w1", generator, &rounds, "{}")
            .await
            .unwrap();
        assert_eq!(added, Generated::Added(2));
        // w1 dies before it reports; w2 gets the task again and adds nothing.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(store.reclaim_expired(3).await.unwrap(), vec![generator]);
        let again = store.lease("w2", 10, 60_000, None).await.unwrap();
        assert_eq!(again.len(), 3, "the task and its two rounds");
        assert_eq!(
            store
                .add_generated("w1", generator, &rounds, "{}")
                .await
                .unwrap(),
            Generated::Lost
        );
        assert_eq!(
            store
                .add_generated("w2", generator, &rounds, "{}")
                .await
                .unwrap(),
            Generated::AlreadyAdded
        );
        // The group waits for the rounds, not only for the task.
        store.finish("w2", &[(generator, ok())]).await.unwrap();
        assert_eq!(state(&store, attempt, "+w+loop").await, "blocked");
        let done: Vec<(i64, Outcome)> = again
            .iter()
            .filter(|t| t.id != generator)
            .map(|t| (t.id, ok()))
            .collect();
        let report = store.finish("w2", &done).await.unwrap();
        assert_eq!(state(&store, attempt, "+w+loop").await, "succeeded");
        assert_eq!(
            report.attempts_finished,
            vec![(attempt, AttemptStatus::Succeeded)]
        );
        assert_eq!(store.tasks(attempt).await.unwrap().len(), 5);
    }

    /// Finished attempts older than the cutoff go with their tasks; running
    /// ones and their queued tasks stay, on both backends.
    #[tokio::test]
    async fn retention_prunes_finished_attempts_and_leaves_the_queue_alone() {
        let dir = tempfile::tempdir().unwrap();
        let lite = Store::open_sqlite(&dir.path().join("r.db")).await.unwrap();
        retention_case(&lite).await;
        if let Some(url) = fresh_postgres("sluice_store_retention").await {
            retention_case(&Store::open(&url).await.unwrap()).await;
        }
    }

    async fn retention_case(store: &Store) {
        let project = store.ensure_project("p").await.unwrap();
        let plan = Plan {
            tasks: vec![
                task("+w", "group", None, vec![]),
                task("+w+a", "sh", Some(0), vec![]),
            ],
        };
        let mut attempts = Vec::new();
        for session_time in 0..5 {
            let a = store
                .start_attempt(&NewAttempt {
                    project_id: project,
                    workflow: "w",
                    session_time,
                    revision_id: None,
                    params: "{}",
                    plan: &plan,
                    only_new_session: false,
                    resume_from: None,
                    max_running: None,
                })
                .await
                .unwrap()
                .unwrap();
            attempts.push(a.id);
        }
        let (finished, running) = attempts.split_at(3);
        for a in finished {
            let leased = store.lease("w1", 10, 60_000, Some(*a)).await.unwrap();
            let outcomes: Vec<_> = leased.iter().map(|t| (t.id, ok())).collect();
            store.finish("w1", &outcomes).await.unwrap();
            assert!(store.attempt(*a).await.unwrap().status.is_done());
        }
        // Nothing finished before an old cutoff.
        assert_eq!(store.prune(1, 2).await.unwrap(), Pruned::default());
        let later = crate_now(store).await + 60_000;
        let pruned = store.prune(later, 2).await.unwrap();
        assert_eq!(pruned.attempts, 3, "{pruned:?}");
        assert_eq!(pruned.tasks, 6, "{pruned:?}");
        assert_eq!(pruned.sessions, 3, "{pruned:?}");
        for a in finished {
            assert!(matches!(store.attempt(*a).await, Err(Error::NotFound(_))));
            assert!(store.tasks(*a).await.unwrap().is_empty());
        }
        for a in running {
            assert_eq!(store.tasks(*a).await.unwrap().len(), 2);
        }
        assert_eq!(
            store.queue_depth().await.unwrap().0,
            2,
            "the queued tasks stay"
        );
        assert_eq!(store.prune(later, 2).await.unwrap(), Pruned::default());
    }

    async fn crate_now(store: &Store) -> i64 {
        sqlx::query(&store.sql("SELECT {now}"))
            .fetch_one(&store.pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }
}
