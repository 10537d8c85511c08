//! Jobs: started under an id chosen before the request (a request retried
//! after a dropped connection meets "already exists" and follows the job it
//! started), polled with backoff until done, their errors in BigQuery's
//! words. A job that fails for a transient reason loaded nothing (jobs are
//! atomic), so it runs again under a new id.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sluice_codec::{Error, ErrorKind};

use crate::{BigQuery, TableRef, WriteMode, api};

/// Runs of a job that failed for a transient reason (or that an earlier
/// run started and that failed).
const JOB_ATTEMPTS: u32 = 4;
/// The longest BigQuery lets a job run.
const JOB_LIMIT: Duration = Duration::from_secs(6 * 3600);

/// What a finished job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobInfo {
    /// Its id, for BigQuery's console and `bq show -j`.
    pub id: String,
    /// Rows it loaded, or that its DML changed.
    pub rows: u64,
    /// Bytes it loaded or processed.
    pub bytes: u64,
}

/// A job id: derived from `key` (the same key always names the same job,
/// so a retried commit finds its load instead of loading twice), or new.
pub fn job_id(project: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => {
            let digest = Sha256::digest(format!("{project}\n{key}").as_bytes());
            let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
            format!("sluice_{hex}")
        }
        None => format!("sluice_{}", uuid::Uuid::new_v4().simple()),
    }
}

/// Whether a job failed because another ran at the same time.
fn concurrent(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("concurrent update") || m.contains("write-write conflict")
}

/// BigQuery's answer to a job id that exists.
pub(crate) fn is_duplicate(e: &Error) -> bool {
    e.kind == ErrorKind::Config
        && (e.message.contains("duplicate") || e.message.contains("Already Exists"))
}

fn count(v: &Value) -> u64 {
    v.as_str()
        .and_then(|n| n.parse().ok())
        .or_else(|| v.as_u64())
        .unwrap_or(0)
}

impl BigQuery {
    /// `{"projectId", "datasetId", "tableId"}`.
    pub(crate) fn reference(&self, t: &TableRef) -> Value {
        json!({"projectId": self.grant.project, "datasetId": t.dataset, "tableId": t.table})
    }

    /// A job body with its id and the grant's location.
    pub(crate) fn job_body(&self, id: &str, configuration: Value) -> Value {
        let mut reference = json!({"projectId": self.grant.project, "jobId": id});
        if let Some(location) = &self.grant.location {
            reference["location"] = Value::String(location.clone());
        }
        json!({"jobReference": reference, "configuration": configuration})
    }

    /// Run a job to its end, again under a new id when it failed for a
    /// transient reason.
    pub(crate) fn run_job(
        &self,
        what: &str,
        configuration: Value,
        key: Option<&str>,
    ) -> Result<JobInfo, Error> {
        self.run_job_with(what, key, |id| {
            let body = self.job_body(id, configuration.clone());
            self.insert_job(what, id, &body)
        })
    }

    /// Start a job under an id with `start` (its answer, and whether the
    /// job existed already) and wait for it. A job that failed loaded
    /// nothing (jobs are atomic), so one that failed for a transient
    /// reason, or an earlier run's that failed (its staged input may be
    /// gone), runs again under the next id: `<id>_r2`, `<id>_r3`, which a
    /// retried commit finds in the same order.
    pub(crate) fn run_job_with(
        &self,
        what: &str,
        key: Option<&str>,
        start: impl Fn(&str) -> Result<(Value, bool), Error>,
    ) -> Result<JobInfo, Error> {
        let first = job_id(&self.grant.project, key);
        let mut attempt = 1;
        loop {
            let id = if attempt == 1 {
                first.clone()
            } else {
                format!("{first}_r{attempt}")
            };
            let (job, existed) = start(&id)?;
            match self.wait(what, job) {
                Err(e) if (existed || e.kind == ErrorKind::Transient) && attempt < JOB_ATTEMPTS => {
                    tracing::warn!(what, job = %id, error = %e.message, "BigQuery job failed; running it again under a new id");
                    std::thread::sleep(std::time::Duration::from_millis(500 << attempt));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Start a job; if one with its id exists (the request was retried, or
    /// an earlier run started it), that job, and `true`.
    fn insert_job(&self, what: &str, id: &str, body: &Value) -> Result<(Value, bool), Error> {
        match self.call(what, Method::POST, &self.url("jobs"), Some(body), false) {
            Ok(job) => Ok((job.unwrap_or_default(), false)),
            Err(e) if is_duplicate(&e) => {
                tracing::info!(
                    what,
                    job = id,
                    "the BigQuery job exists already: following it"
                );
                Ok((self.get_job(what, id)?, true))
            }
            Err(e) => Err(e),
        }
    }

    fn get_job(&self, what: &str, id: &str) -> Result<Value, Error> {
        let mut url = self.url(&format!("jobs/{}", sluice_gcs::google::segment(id)));
        if let Some(location) = &self.grant.location {
            url.push_str(&format!(
                "?location={}",
                sluice_gcs::google::segment(location)
            ));
        }
        Ok(self
            .call(what, Method::GET, &url, None, false)?
            .unwrap_or_default())
    }

    /// Poll `job` until it is done: its statistics, or its errors.
    pub(crate) fn wait(&self, what: &str, mut job: Value) -> Result<JobInfo, Error> {
        let id = job["jobReference"]["jobId"]
            .as_str()
            .ok_or_else(|| {
                Error::internal(format!("{what}: BigQuery answered a job without an id"))
            })?
            .to_string();
        let started = Instant::now();
        let mut delay = Duration::from_millis(200);
        while job["status"]["state"].as_str() != Some("DONE") {
            if started.elapsed() > JOB_LIMIT {
                return Err(Error::transient(format!(
                    "{what}: BigQuery job {id} did not finish within {} hours",
                    JOB_LIMIT.as_secs() / 3600
                )));
            }
            std::thread::sleep(delay);
            delay = (delay * 3 / 2).min(Duration::from_secs(5));
            job = self.get_job(what, &id)?;
        }
        if let Some((reason, message)) = api::job_errors(&job["status"]) {
            let message = format!("{what}: BigQuery job {id} failed: {message}");
            return Err(match reason.as_str() {
                // Jobs that met a concurrent one (BigQuery's "concurrent
                // update" of DML, an emulator's catalog conflict) changed
                // nothing: worth another run.
                _ if concurrent(&message) => Error::transient(message),
                // A load BigQuery could not read: the rows are at fault.
                "invalid" if job["configuration"]["load"].is_object() => Error::data(message),
                r => api::by_reason(r, StatusCode::OK, message),
            });
        }
        let stats = &job["statistics"];
        let rows =
            count(&stats["load"]["outputRows"]).max(count(&stats["query"]["numDmlAffectedRows"]));
        let bytes = count(&stats["load"]["inputFileBytes"])
            .max(count(&stats["query"]["totalBytesProcessed"]));
        Ok(JobInfo { id, rows, bytes })
    }

    /// A Parquet load job's configuration.
    pub(crate) fn load_config(&self, t: &TableRef, mode: WriteMode) -> Value {
        json!({"load": {
            "sourceFormat": "PARQUET",
            "destinationTable": self.reference(t),
            "writeDisposition": match mode {
                WriteMode::Append => "WRITE_APPEND",
                WriteMode::Truncate => "WRITE_TRUNCATE",
            },
            "createDisposition": "CREATE_NEVER",
            "parquetOptions": {"enableListInference": true},
        }})
    }

    /// Load Parquet objects (`gs://` URIs the caller resolved from its blob
    /// grant) into `t` in one job. `key` names the job (see
    /// [`job_id`]): the same key never loads twice.
    ///
    /// # Errors
    /// BigQuery's errors: a data error for rows it could not take.
    pub fn load_uris(
        &self,
        t: &TableRef,
        uris: &[String],
        mode: WriteMode,
        key: Option<&str>,
    ) -> Result<JobInfo, Error> {
        self.granted_table(t)?;
        if let Some(bad) = uris.iter().find(|u| !u.starts_with("gs://")) {
            return Err(Error::config(format!(
                "BigQuery loads from gs:// only, not `{bad}`"
            )));
        }
        let mut configuration = self.load_config(t, mode);
        configuration["load"]["sourceUris"] = json!(uris);
        self.run_job(&format!("loading BigQuery table {t}"), configuration, key)
    }

    /// Copy `source`'s rows into `target` in one copy job: appended, or
    /// replacing `target`'s (a missing target is created).
    ///
    /// # Errors
    /// BigQuery's errors.
    pub fn copy(
        &self,
        source: &TableRef,
        target: &TableRef,
        mode: WriteMode,
    ) -> Result<JobInfo, Error> {
        self.granted_table(target)?;
        self.granted_table(source)?;
        let configuration = json!({"copy": {
            "sourceTable": self.reference(source),
            "destinationTable": self.reference(target),
            "writeDisposition": match mode {
                WriteMode::Append => "WRITE_APPEND",
                WriteMode::Truncate => "WRITE_TRUNCATE",
            },
            "createDisposition": "CREATE_IF_NEEDED",
        }});
        let what = format!("copying BigQuery table {source} into {target}");
        let mut job = self.run_job(&what, configuration, None)?;
        if job.rows == 0 {
            // Copy jobs report no row count: the source's is what moved.
            job.rows = self.table(source)?.map_or(0, |t| t.rows);
        }
        Ok(job)
    }

    /// Upsert `source` into `target` on `key` with one `MERGE`; the
    /// columns are `source`'s.
    ///
    /// # Errors
    /// A config error for a key column `source` lacks; BigQuery's errors.
    pub fn merge(
        &self,
        target: &TableRef,
        source: &TableRef,
        key: &[String],
    ) -> Result<JobInfo, Error> {
        self.granted_table(target)?;
        let columns = self
            .table(source)?
            .ok_or_else(|| Error::config(format!("BigQuery table {source} does not exist")))?
            .columns();
        if key.is_empty() {
            return Err(Error::config("merge needs key columns"));
        }
        if let Some(k) = key.iter().find(|k| !columns.contains(k)) {
            return Err(Error::config(format!(
                "merge key column `{k}` is not a column of {source}"
            )));
        }
        let sql = self.merge_sql(target, source, key, &columns)?;
        self.query(
            &format!("merging {source} into BigQuery table {target}"),
            &sql,
        )
    }

    /// Delete the rows of `t` whose `column` is in `[from, to)`, or all
    /// rows without a column.
    ///
    /// # Errors
    /// BigQuery's errors.
    pub fn delete_range(
        &self,
        t: &TableRef,
        range: Option<(&str, Option<&str>, Option<&str>)>,
    ) -> Result<JobInfo, Error> {
        self.granted_table(t)?;
        let sql = self.delete_sql(t, range)?;
        self.query(&format!("deleting rows of BigQuery table {t}"), &sql)
    }

    /// Run a statement the host built.
    fn query(&self, what: &str, sql: &str) -> Result<JobInfo, Error> {
        let configuration = json!({"query": {"query": sql, "useLegacySql": false}});
        self.run_job(what, configuration, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_failures_are_worth_another_run() {
        assert!(concurrent(
            "Could not serialize access to table t due to concurrent update"
        ));
        assert!(concurrent(
            "Catalog write-write conflict on create with \"gcs_emulator\""
        ));
        assert!(!concurrent("Required field id cannot be null"));
    }

    #[test]
    fn keyed_job_ids_are_stable_and_distinct() {
        let a = job_id("p", Some("job/s/0/7"));
        assert_eq!(a, job_id("p", Some("job/s/0/7")));
        assert_ne!(a, job_id("p", Some("job/s/0/8")));
        assert_ne!(a, job_id("q", Some("job/s/0/7")));
        assert!(a.starts_with("sluice_") && a.len() == 47, "{a}");
        assert_ne!(job_id("p", None), job_id("p", None));
    }
}
