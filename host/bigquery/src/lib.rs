//! BigQuery behind a `bigquery` grant.
//!
//! A grant names one project (where jobs run and are billed) and the
//! datasets a plugin may touch. Every write a plugin asks for names a table
//! in one of those datasets by dataset and table: the host builds the
//! request and any SQL itself (identifiers quoted, never text from the
//! plugin), so no job writes a table the grant does not name.
//!
//! Reads are a plugin's SELECT, dry-run first so that BigQuery itself names
//! every table it would read, refused if one is outside the grant (see
//! `read`), then read page by page or exported to the plugin's `gs://`
//! prefix as Parquet.
//!
//! Loads are Parquet: from objects in the plugin's `gs://` blob grant, or
//! uploaded directly with a resumable upload when there is none. Jobs get
//! ids the host makes up once, so a request retried after a dropped
//! connection finds the job it created instead of starting a second one;
//! jobs are polled with backoff, and `rateLimitExceeded`, `backendError` and
//! 5xx are retried as transient.
//!
//! The requests are BigQuery's REST API sent through the GCS capability's
//! transport (`google-cloud-auth` credentials, one HTTP client per
//! endpoint): Google's `google-cloud-bigquery-v2` has no media upload,
//! which direct loads need.

mod api;
mod dml;
mod jobs;
mod read;
mod rows;
mod schema;
mod tables;
mod upload;

use std::sync::Arc;

use sluice_codec::Error;
use sluice_gcs::GcsSettings;
use sluice_gcs::google::Client;

pub use jobs::{JobInfo, job_id};
pub use read::{Param, Results};
pub use rows::{arrow_schema, page_to_batch};
pub use schema::{bigquery_fields, compatible, type_name};
pub use tables::{Partitioning, TableInfo, TableOptions};
pub use upload::Upload;

/// BigQuery's endpoint when none is given.
pub const GOOGLE: &str = "https://bigquery.googleapis.com";

/// What a job grants one plugin: a project and datasets in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BigQueryGrant {
    /// The project jobs run in; tables are in its datasets.
    pub project: String,
    /// The datasets the plugin may read, write and create tables in.
    pub datasets: Vec<String>,
    /// Where new datasets go and jobs run (`US`, `asia-northeast1`); by
    /// default BigQuery's.
    pub location: Option<String>,
    /// The endpoint (an emulator, or Google's) and credentials.
    pub settings: GcsSettings,
}

/// A table in a granted dataset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableRef {
    /// The dataset.
    pub dataset: String,
    /// The table.
    pub table: String,
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.dataset, self.table)
    }
}

/// How a load treats the rows already in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Add the rows.
    Append,
    /// Replace the table's rows with them.
    Truncate,
}

/// One grant's BigQuery: the client and what it may reach.
#[derive(Clone)]
pub struct BigQuery {
    client: Client,
    grant: Arc<BigQueryGrant>,
}

impl std::fmt::Debug for BigQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigQuery")
            .field("project", &self.grant.project)
            .field("datasets", &self.grant.datasets)
            .finish()
    }
}

impl BigQuery {
    /// A handle on the grant's project. No request is made yet.
    ///
    /// # Errors
    /// A config error for unusable credentials.
    pub fn new(grant: BigQueryGrant) -> Result<BigQuery, Error> {
        let mut settings = grant.settings.clone();
        if settings.endpoint.is_none() {
            settings.endpoint = Some(GOOGLE.to_string());
        }
        Ok(BigQuery {
            client: sluice_gcs::google::shared(&settings)?,
            grant: Arc::new(grant),
        })
    }

    /// The project jobs run in.
    pub fn project(&self) -> &str {
        &self.grant.project
    }

    /// Refuse a dataset the grant does not name, or a name that is not
    /// one (so it can be quoted in SQL safely).
    fn granted(&self, dataset: &str) -> Result<(), Error> {
        dml::check_dataset(dataset)?;
        if self.grant.datasets.iter().any(|d| d == dataset) {
            return Ok(());
        }
        Err(Error::config(format!(
            "dataset `{dataset}` of project `{}` is not granted: add it to `grants: {{bigquery: {{datasets: [...]}}}}` (granted: [{}])",
            self.grant.project,
            self.grant.datasets.join(", ")
        )))
    }

    /// [`BigQuery::granted`] for a table, its name checked too.
    fn granted_table(&self, t: &TableRef) -> Result<(), Error> {
        self.granted(&t.dataset)?;
        dml::check_table(&t.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bq() -> BigQuery {
        BigQuery::new(BigQueryGrant {
            project: "p".into(),
            datasets: vec!["analytics".into()],
            location: None,
            settings: GcsSettings {
                endpoint: Some("http://127.0.0.1:1".into()),
                credentials: sluice_gcs::GcsCredentials::Anonymous,
            },
        })
        .unwrap()
    }

    #[test]
    fn only_granted_datasets_are_reachable() {
        let bq = bq();
        assert!(bq.granted("analytics").is_ok());
        let e = bq.granted("finance").unwrap_err();
        assert!(e.message.contains("`finance`"), "{}", e.message);
        assert!(e.message.contains("granted: [analytics]"), "{}", e.message);
        let sneaky = TableRef {
            dataset: "analytics".into(),
            table: "t` ; DROP TABLE `x".into(),
        };
        assert!(bq.granted_table(&sneaky).is_err());
    }
}
