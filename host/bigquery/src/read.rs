//! Reading: a plugin's SELECT, checked against the grant by a dry run
//! before it runs, then read page by page from the query job's result,
//! or written by `EXPORT DATA` as Parquet to the plugin's `gs://` prefix.
//!
//! Here the plugin does send SQL, so the wall is BigQuery's own account of
//! the statement: the dry run names every table it reads and routine it
//! calls, and each must be in a granted dataset of the grant's project.
//! Only one `SELECT` passes (no scripts, DML, DDL or `EXPORT`), and
//! `INFORMATION_SCHEMA` and `EXTERNAL_QUERY`, which a dry run does not
//! list as tables, are refused outright.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use reqwest::Method;
use serde_json::{Value, json};
use sluice_codec::Error;

use crate::{BigQuery, JobInfo, rows};

/// A named query parameter (`@name` in the statement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its name, without the `@`.
    pub name: String,
    /// BigQuery's type: `INT64`, `STRING`, `TIMESTAMP`, …
    pub ty: String,
    /// Its value as BigQuery reads it from text; `None` is NULL.
    pub value: Option<String>,
}

/// Words in a statement that reach past what a dry run reports.
const REFUSED: [&str; 2] = ["INFORMATION_SCHEMA", "EXTERNAL_QUERY"];

impl BigQuery {
    fn query_config(&self, sql: &str, params: &[Param]) -> Value {
        let parameters: Vec<Value> = params
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "parameterType": {"type": p.ty},
                    "parameterValue": match &p.value {
                        Some(v) => json!({"value": v}),
                        None => json!({}),
                    },
                })
            })
            .collect();
        let mut query = json!({"query": sql, "useLegacySql": false});
        if !parameters.is_empty() {
            query["parameterMode"] = json!("NAMED");
            query["queryParameters"] = Value::Array(parameters);
        }
        query
    }

    /// Dry-run `sql` and refuse it unless it is one SELECT reading only
    /// granted datasets; the result's `schema.fields`.
    ///
    /// # Errors
    /// An auth error naming a table or routine outside the grant; a config
    /// error for a statement that is not a SELECT, or that BigQuery
    /// refuses.
    pub fn check_select(&self, sql: &str, params: &[Param]) -> Result<Vec<Value>, Error> {
        let upper = sql.to_ascii_uppercase();
        if let Some(word) = REFUSED.iter().find(|w| upper.contains(*w)) {
            return Err(Error::auth(format!(
                "a query may not use {word}: it reaches past the granted datasets"
            )));
        }
        let mut config = json!({"dryRun": true, "query": self.query_config(sql, params)});
        if let Some(location) = &self.grant.location {
            config["jobReference"] = json!({"location": location});
        }
        let body = json!({"configuration": config});
        let job = self
            .call(
                "checking a BigQuery query",
                Method::POST,
                &self.url("jobs"),
                Some(&body),
                false,
            )?
            .unwrap_or_default();
        let stats = &job["statistics"]["query"];
        let kind = stats["statementType"].as_str().unwrap_or("");
        if kind != "SELECT" {
            return Err(Error::config(format!(
                "a BigQuery source reads with one SELECT; this statement is {}",
                if kind.is_empty() { "not one" } else { kind }
            )));
        }
        for (list, what) in [
            ("referencedTables", "table"),
            ("referencedRoutines", "routine"),
        ] {
            for r in stats[list].as_array().map_or(&[][..], Vec::as_slice) {
                let id = |k: &str| r[k].as_str().unwrap_or("").to_string();
                let (project, dataset) = (id("projectId"), id("datasetId"));
                let name = id(if what == "table" {
                    "tableId"
                } else {
                    "routineId"
                });
                if project != self.grant.project || !self.grant.datasets.contains(&dataset) {
                    return Err(Error::auth(format!(
                        "the query reads {what} `{project}.{dataset}.{name}`, outside the grant (project `{}`, datasets [{}])",
                        self.grant.project,
                        self.grant.datasets.join(", ")
                    )));
                }
            }
        }
        Ok(stats["schema"]["fields"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Run a checked SELECT and read its result in pages of up to
    /// `page_rows`.
    ///
    /// # Errors
    /// See [`BigQuery::check_select`]; BigQuery's errors.
    pub fn select(&self, sql: &str, params: &[Param], page_rows: u32) -> Result<Results, Error> {
        self.check_select(sql, params)?;
        let configuration = json!({"query": self.query_config(sql, params)});
        let job = self.run_job("running a BigQuery query", configuration, None)?;
        let mut results = Results {
            bq: self.clone(),
            job: job.clone(),
            page_rows: page_rows.clamp(1, 100_000),
            schema: None,
            fields: Vec::new(),
            next_page: None,
            token: None,
            done: false,
        };
        results.fetch_page()?;
        Ok(results)
    }

    /// Run a checked SELECT as `EXPORT DATA` to Parquet objects matching
    /// `uri` (a `gs://` URI with one `*`); the result's `schema.fields`.
    ///
    /// # Errors
    /// See [`BigQuery::check_select`]; BigQuery's errors.
    pub fn export(&self, sql: &str, params: &[Param], uri: &str) -> Result<Vec<Value>, Error> {
        if !uri.starts_with("gs://") || uri.matches('*').count() != 1 || uri.contains('\'') {
            return Err(Error::config(format!(
                "BigQuery exports to a gs:// URI with one `*`, not `{uri}`"
            )));
        }
        let fields = self.check_select(sql, params)?;
        let statement = format!(
            "EXPORT DATA OPTIONS (uri = '{uri}', format = 'PARQUET', overwrite = true) AS\n{sql}"
        );
        let configuration = json!({"query": self.query_config(&statement, params)});
        self.run_job("exporting a BigQuery query", configuration, None)?;
        Ok(fields)
    }
}

/// A query job's result, read page by page.
pub struct Results {
    bq: BigQuery,
    job: JobInfo,
    page_rows: u32,
    schema: Option<SchemaRef>,
    fields: Vec<Value>,
    /// A page fetched ahead (the first, which carries the schema).
    next_page: Option<RecordBatch>,
    /// The token of the page after `next_page`.
    token: Option<String>,
    /// No page after `next_page`.
    done: bool,
}

impl std::fmt::Debug for Results {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Results")
            .field("job", &self.job.id)
            .finish()
    }
}

impl Results {
    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        self.schema
            .clone()
            .unwrap_or_else(|| std::sync::Arc::new(arrow_schema::Schema::empty()))
    }

    /// The query job, for the log.
    pub fn job(&self) -> &JobInfo {
        &self.job
    }

    /// The next page as a batch, or `None` after the last.
    ///
    /// # Errors
    /// BigQuery's errors, or a data error for a value its column's type
    /// cannot hold.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, Error> {
        loop {
            if let Some(batch) = self.next_page.take()
                && batch.num_rows() > 0
            {
                return Ok(Some(batch));
            }
            if self.done {
                return Ok(None);
            }
            self.fetch_page()?;
        }
    }

    /// Fetch the page after the last one (the first, at the start).
    fn fetch_page(&mut self) -> Result<(), Error> {
        let mut url = self.bq.url(&format!(
            "queries/{}?maxResults={}&formatOptions.useInt64Timestamp=true",
            sluice_gcs::google::segment(&self.job.id),
            self.page_rows
        ));
        if let Some(location) = &self.bq.grant.location {
            url.push_str(&format!(
                "&location={}",
                sluice_gcs::google::segment(location)
            ));
        }
        if let Some(token) = self.token.take() {
            url.push_str(&format!(
                "&pageToken={}",
                sluice_gcs::google::segment(&token)
            ));
        }
        let what = format!("reading the result of BigQuery job {}", self.job.id);
        let page = self
            .bq
            .call(&what, Method::GET, &url, None, false)?
            .unwrap_or_default();
        if page["jobComplete"] == json!(false) {
            // A finished job's result is always complete; ask again.
            return Ok(());
        }
        if self.schema.is_none() {
            self.fields = page["schema"]["fields"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            self.schema = Some(rows::arrow_schema(&self.fields)?);
        }
        let rows = page["rows"].as_array().map_or(&[][..], Vec::as_slice);
        let batch = rows::page_to_batch(&self.schema(), &self.fields, rows)?;
        self.token = page["pageToken"].as_str().map(str::to_string);
        self.done = self.token.is_none() || rows.is_empty();
        self.next_page = Some(batch);
        Ok(())
    }
}
