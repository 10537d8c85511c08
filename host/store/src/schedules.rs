//! Schedules, and the one scheduler that acts on them at a time.

use sqlx::Row;

use crate::{Dialect, Result, Store};

/// A workflow's schedule.
#[derive(Debug, Clone)]
pub struct ScheduleRecord {
    /// Id.
    pub id: i64,
    /// Project id.
    pub project_id: i64,
    /// Project name.
    pub project: String,
    /// Workflow name.
    pub workflow: String,
    /// The schedule as the workflow file gives it (JSON).
    pub spec: String,
    /// The next session time, ms since the epoch.
    pub next_run_time: i64,
    /// The last session time it fired, ms since the epoch.
    pub last_session_time: Option<i64>,
    /// Whether it fires.
    pub enabled: bool,
}

/// The advisory lock key of the scheduler leader (`"sluice-s"`).
const LEADER_KEY: i64 = 0x736c_7569_6365_2d73;

/// Held while this process is the scheduler leader: a connection that keeps
/// a PostgreSQL session advisory lock. Dropping it (or losing the
/// connection) ends the leadership.
pub struct Leadership {
    conn: Option<sqlx::AnyConnection>,
}

impl Leadership {
    /// Whether the lock is still held (the connection still answers).
    pub async fn still_held(&mut self) -> bool {
        match &mut self.conn {
            None => true,
            Some(conn) => sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok(),
        }
    }
}

impl Store {
    /// Become the scheduler leader if no other process is. On SQLite (one
    /// process) this always succeeds.
    ///
    /// # Errors
    /// On a database error.
    pub async fn try_lead(&self) -> Result<Option<Leadership>> {
        if self.dialect == Dialect::Sqlite {
            return Ok(Some(Leadership { conn: None }));
        }
        let mut conn = self.pool.acquire().await?.detach();
        let row = sqlx::query("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_KEY)
            .fetch_one(&mut conn)
            .await?;
        let got: bool = row.try_get(0)?;
        Ok(got.then_some(Leadership { conn: Some(conn) }))
    }

    /// Create or update a workflow's schedule. A new or changed `spec`
    /// takes `next_run_time`; an unchanged one keeps its place.
    ///
    /// # Errors
    /// On a database error.
    pub async fn upsert_schedule(
        &self,
        project_id: i64,
        workflow: &str,
        spec: &str,
        next_run_time: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO schedules (project_id, workflow, spec, next_run_time) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (project_id, workflow) DO UPDATE SET \
             next_run_time = CASE WHEN schedules.spec = excluded.spec \
               THEN schedules.next_run_time ELSE excluded.next_run_time END, \
             spec = excluded.spec",
        )
        .bind(project_id)
        .bind(workflow)
        .bind(spec)
        .bind(next_run_time)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Remove the schedules of a project's workflows not in `keep`.
    ///
    /// # Errors
    /// On a database error.
    pub async fn drop_schedules_except(&self, project_id: i64, keep: &[String]) -> Result<()> {
        let keep = serde_json::to_string(keep).unwrap_or_else(|_| "[]".into());
        let list = match self.dialect {
            Dialect::Sqlite => "(SELECT value FROM json_each($2))",
            Dialect::Postgres => "(SELECT jsonb_array_elements_text($2::jsonb))",
        };
        sqlx::query(&format!(
            "DELETE FROM schedules WHERE project_id = $1 AND workflow NOT IN {list}"
        ))
        .bind(project_id)
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every schedule, or only those due at `now` (enabled, next run passed).
    ///
    /// # Errors
    /// On a database error.
    pub async fn schedules(&self, due_at: Option<i64>) -> Result<Vec<ScheduleRecord>> {
        let rows = sqlx::query(
            "SELECT s.id, s.project_id, p.name, s.workflow, s.spec, s.next_run_time, \
             s.last_session_time, s.enabled FROM schedules s JOIN projects p ON p.id = s.project_id \
             WHERE $1 IS NULL OR (s.enabled = 1 AND s.next_run_time <= $1) \
             ORDER BY s.next_run_time, s.id",
        )
        .bind(due_at)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ScheduleRecord {
                    id: r.try_get(0)?,
                    project_id: r.try_get(1)?,
                    project: r.try_get(2)?,
                    workflow: r.try_get(3)?,
                    spec: r.try_get(4)?,
                    next_run_time: r.try_get(5)?,
                    last_session_time: r.try_get(6)?,
                    enabled: r.try_get::<i64, _>(7)? == 1,
                })
            })
            .collect()
    }

    /// Move a schedule on, from the time it fired (`fired`) to `next`. Only
    /// the caller that still sees `fired` as next wins: a second scheduler
    /// working from stale data changes nothing.
    ///
    /// # Errors
    /// On a database error.
    pub async fn advance_schedule(
        &self,
        id: i64,
        fired: i64,
        next: i64,
        last_session_time: Option<i64>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE schedules SET next_run_time = $3, \
             last_session_time = COALESCE($4, last_session_time) \
             WHERE id = $1 AND next_run_time = $2",
        )
        .bind(id)
        .bind(fired)
        .bind(next)
        .bind(last_session_time)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Enable or disable a workflow's schedule; false if it has none.
    ///
    /// # Errors
    /// On a database error.
    pub async fn set_schedule_enabled(
        &self,
        project: &str,
        workflow: &str,
        enabled: bool,
        next_run_time: Option<i64>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE schedules SET enabled = $3, next_run_time = COALESCE($4, next_run_time) \
             WHERE workflow = $2 AND project_id = (SELECT id FROM projects WHERE name = $1)",
        )
        .bind(project)
        .bind(workflow)
        .bind(i64::from(enabled))
        .bind(next_run_time)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether the workflow has an attempt still running.
    ///
    /// # Errors
    /// On a database error.
    pub async fn has_running_attempt(&self, project_id: i64, workflow: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT count(*) FROM attempts a JOIN sessions s ON s.id = a.session_id \
             WHERE s.project_id = $1 AND s.workflow = $2 AND a.status = 'running'",
        )
        .bind(project_id)
        .bind(workflow)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    }
}
