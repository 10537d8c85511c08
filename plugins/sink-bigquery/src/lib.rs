//! `bigquery` sink: batches become Parquet, loaded by BigQuery load jobs.
//!
//! With a `gs://` blob grant each commit's Parquet is staged under that
//! prefix (hidden, never published) and loaded from there; without one it
//! goes up directly, a resumable upload of a file the host gathers. Either
//! way one load job per commit, named after the commit by the host, so a
//! commit made again after a crash finds its load done.
//!
//! - `append`: loads go straight into the table;
//! - `replace`: loads go into a staging table, copied over the table
//!   (`WRITE_TRUNCATE`) once every task of the stream committed;
//! - `merge`: loads go into a staging table, then one `MERGE` on the key
//!   (configured, else the source's primary key);
//! - `delete_in_advance`: loads go into a staging table; then the rows of
//!   the table in the configured range are deleted and staging's appended.
//!
//! Tables and datasets are created when missing, with types from Arrow,
//! time partitioning, clustering and column descriptions; a column the
//! data has and the table lacks is added; one whose type cannot take the
//! data's is refused before any row moves.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_sdk::arrow_schema::SchemaRef;
use sluice_sdk::bigquery::{self, TableOptions, TableRef, Upload, WriteMode};
use sluice_sdk::codec::Encoder;
use sluice_sdk::{Batch, CommitInfo, Error, ErrorKind, Info, Result, Sink, Writer, blob, log};

/// How rows reach the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Add every row.
    #[default]
    Append,
    /// Replace the table's rows with this run's.
    Replace,
    /// Insert new keys, update existing ones.
    Merge,
    /// Delete the rows in `delete_range` (all rows without one), then add
    /// this run's, in one step at the end of the run.
    DeleteInAdvance,
}

/// Where a commit's Parquet waits for its load job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Staging {
    /// Through GCS when the plugin has a blob grant, else uploaded.
    #[default]
    Auto,
    /// Under the blob grant's `gs://` prefix.
    Gcs,
    /// Uploaded with the load job.
    Upload,
}

/// Time partitioning of a new table.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartitionBy {
    /// A DATE, DATETIME or TIMESTAMP column.
    pub column: String,
    /// `hour`, `day` (default), `month` or `year`.
    #[serde(default = "day")]
    pub granularity: String,
}

fn day() -> String {
    "day".into()
}

/// The rows `delete_in_advance` deletes: `column` in `[from, to)`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteRange {
    /// The column (default: `partition_by.column`).
    #[serde(default)]
    pub column: Option<String>,
    /// The first value deleted (`2026-12-01`), or none for no lower end.
    #[serde(default)]
    pub from: Option<String>,
    /// The first value kept after the range, or none for no upper end.
    #[serde(default)]
    pub to: Option<String>,
}

/// The sink's config.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The dataset, granted with `grants: {bigquery: {datasets: [...]}}`.
    pub dataset: String,
    /// The table; `{stream}` is the stream's name.
    #[serde(default = "stream_table")]
    pub table: String,
    /// `append` (default), `replace`, `merge` or `delete_in_advance`.
    #[serde(default)]
    pub mode: Mode,
    /// Merge: the columns that identify a row (default: the source's
    /// primary key).
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// Create the dataset and table when missing (default true).
    #[serde(default = "yes")]
    pub create: bool,
    /// Time partitioning of a new table.
    #[serde(default)]
    pub partition_by: Option<PartitionBy>,
    /// Clustering columns of a new table (at most four).
    #[serde(default)]
    pub cluster_by: Vec<String>,
    /// Column descriptions of a new table, by column.
    #[serde(default)]
    pub descriptions: BTreeMap<String, String>,
    /// `delete_in_advance`: the rows to delete first.
    #[serde(default)]
    pub delete_range: Option<DeleteRange>,
    /// `auto` (default), `gcs` or `upload`.
    #[serde(default)]
    pub staging: Staging,
    /// Where staged Parquet goes under the blob grant.
    #[serde(default = "staging_prefix")]
    pub staging_prefix: String,
}

fn stream_table() -> String {
    "{stream}".into()
}

fn yes() -> bool {
    true
}

fn staging_prefix() -> String {
    "sluice-bigquery".into()
}

/// A column and the `[from, to)` of its values `delete_in_advance` deletes.
type Range = (String, Option<String>, Option<String>);

/// The suffix of a stream's staging table.
const STAGING: &str = "__sluice_staging";
/// Staging tables a killed run leaves behind drop themselves after this.
const STAGING_HOURS: u32 = 7 * 24;

impl Config {
    fn target(&self, stream: &str) -> TableRef {
        TableRef::new(&self.dataset, &self.table.replace("{stream}", stream))
    }

    fn staging(&self, stream: &str) -> TableRef {
        let t = self.target(stream);
        TableRef::new(&t.dataset, &format!("{}{STAGING}", t.table))
    }

    /// Whether loads go to a staging table first.
    fn staged(&self) -> bool {
        self.mode != Mode::Append
    }

    fn options(&self) -> TableOptions {
        TableOptions {
            partitioning: self
                .partition_by
                .as_ref()
                .map(|p| (p.column.clone(), p.granularity.clone())),
            clustering: self.cluster_by.clone(),
            descriptions: self
                .descriptions
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            expiration_hours: None,
        }
    }

    /// Whether commits stage Parquet through GCS.
    fn through_gcs(&self) -> Result<bool> {
        match self.staging {
            Staging::Gcs => Ok(true),
            Staging::Upload => Ok(false),
            Staging::Auto => match blob::stat(&format!("{}/.probe", self.prefix())) {
                Ok(_) => Ok(true),
                Err(e) if e.kind == ErrorKind::Config && e.message.contains("not granted") => {
                    Ok(false)
                }
                Err(e) => Err(e),
            },
        }
    }

    fn prefix(&self) -> &str {
        self.staging_prefix.trim_matches('/')
    }

    /// Merge: the key columns.
    fn merge_key(&self, schema: &SchemaRef) -> Result<Vec<String>> {
        let key = self.key.clone().unwrap_or_else(|| {
            schema
                .metadata()
                .get("sluice.primary_key")
                .and_then(|k| serde_json::from_str(k).ok())
                .unwrap_or_default()
        });
        if key.is_empty() {
            return Err(Error::config(
                "mode merge: the source reports no primary key; set `key`",
            ));
        }
        if let Some(k) = key.iter().find(|k| schema.field_with_name(k).is_err()) {
            return Err(Error::config(format!(
                "mode merge: the data has no key column `{k}`"
            )));
        }
        Ok(key)
    }

    fn delete_range(&self) -> Result<Option<Range>> {
        let Some(r) = &self.delete_range else {
            return Ok(None);
        };
        let column = r
            .column
            .clone()
            .or_else(|| self.partition_by.as_ref().map(|p| p.column.clone()))
            .ok_or_else(|| {
                Error::config("delete_range: name its `column` (or set `partition_by`)")
            })?;
        Ok(Some((column, r.from.clone(), r.to.clone())))
    }
}

/// The plugin.
pub struct BigQuerySink;

impl Sink for BigQuerySink {
    type Config = Config;
    type Writer = TableWriter;

    fn info() -> Info {
        Info {
            name: "bigquery",
            version: env!("CARGO_PKG_VERSION"),
            description: "BigQuery tables by Parquet load jobs (via GCS or direct upload): append, replace, merge, delete_in_advance",
            capabilities: &["bigquery", "blob", "codec"],
        }
    }

    fn check(config: &Config) -> Result<()> {
        bigquery::dataset(&config.dataset, config.create)?;
        config.delete_range()?;
        if config.through_gcs()? {
            // The staging prefix takes an object and gives it back.
            let probe = format!("{}/.sluice-check", config.prefix());
            blob::write(&probe, b"sluice check")?;
            blob::delete(&probe)?;
        }
        Ok(())
    }

    fn begin_stream(config: &Config, stream: &str, fresh: bool) -> Result<()> {
        // A dataset outside the grant is refused here, before any row moves.
        bigquery::dataset(&config.dataset, config.create)?;
        config.delete_range()?;
        if config.staged() && fresh {
            // What an unfinished earlier run staged belongs to rows read again.
            bigquery::drop_table(&config.staging(stream))?;
        }
        Ok(())
    }

    fn finish_stream(config: &Config, stream: &str) -> Result<Vec<String>> {
        let target = config.target(stream);
        let output = format!("{}.{target}", bigquery::project());
        if !config.staged() {
            return Ok(vec![output]);
        }
        let staging = config.staging(stream);
        let Some(staged) = bigquery::table(&staging)? else {
            // No task wrote a row this run.
            return Ok(Vec::new());
        };
        let job = match config.mode {
            Mode::Replace => bigquery::copy(&staging, &target, WriteMode::Truncate)?,
            Mode::Merge => {
                let key = match &config.key {
                    Some(k) => k.clone(),
                    None => primary_key_of(&staged)?,
                };
                bigquery::merge(&target, &staging, &key)?
            }
            Mode::DeleteInAdvance => {
                let range = config.delete_range()?;
                let deleted = bigquery::delete_rows(
                    &target,
                    range
                        .as_ref()
                        .map(|(c, f, t)| (c.as_str(), f.as_deref(), t.as_deref())),
                )?;
                log::info(&format!(
                    "deleted {} row(s) of {target} in advance",
                    deleted.rows
                ));
                bigquery::copy(&staging, &target, WriteMode::Append)?
            }
            Mode::Append => unreachable!("not staged"),
        };
        log::info(&format!(
            "{target}: {} row(s) from {staging} (job {})",
            job.rows, job.id
        ));
        bigquery::drop_table(&staging)?;
        Ok(vec![output])
    }

    fn open(config: Config, stream: &str, schema: SchemaRef, task: &str) -> Result<TableWriter> {
        let target = config.target(stream);
        let options = config.options();
        let load_into = if config.staged() {
            let mut staging_options = TableOptions {
                expiration_hours: Some(STAGING_HOURS),
                ..options.clone()
            };
            // Merge and delete_in_advance need the table as it will be;
            // replace only one to copy over.
            let prepare_target = match config.mode {
                Mode::Merge => {
                    let key = config.merge_key(&schema)?;
                    // The key travels with the staging table, for
                    // finish-stream.
                    staging_options.descriptions = vec![(key[0].clone(), key_description(&key))];
                    true
                }
                Mode::DeleteInAdvance => true,
                _ => bigquery::table(&target)?.is_none(),
            };
            if prepare_target {
                bigquery::conform_table(&target, &schema, &options, config.create)?;
            }
            let staging = config.staging(stream);
            bigquery::conform_table(&staging, &schema, &staging_options, true)?;
            staging
        } else {
            bigquery::conform_table(&target, &schema, &options, config.create)?;
            target.clone()
        };
        let gcs = config.through_gcs()?;
        Ok(TableWriter {
            path_base: format!("{}/{stream}/{task}", config.prefix()),
            gcs,
            schema,
            load_into,
            output: format!("{}.{target}", bigquery::project()),
            part: None,
            commits: 0,
            rows: 0,
        })
    }
}

/// The description a merge's staging table carries on its first key
/// column: the key, for `finish-stream`, which sees no schema.
fn key_description(key: &[String]) -> String {
    format!("sluice merge key: {}", serde_json::json!(key))
}

/// The key a staging table was made with.
fn primary_key_of(staged: &bigquery::TableInfo) -> Result<Vec<String>> {
    staged
        .fields
        .iter()
        .filter_map(|f| f["description"].as_str())
        .find_map(|d| d.strip_prefix("sluice merge key: "))
        .and_then(|k| serde_json::from_str(k).ok())
        .ok_or_else(|| Error::config("mode merge: set `key` (the staging table names none)"))
}

/// One commit's rows on their way to a load job.
enum Part {
    Staged { path: String, encoder: Encoder },
    Uploading(Upload),
}

/// Writes one task's batches: a Parquet part per commit, loaded by one job.
pub struct TableWriter {
    schema: SchemaRef,
    load_into: TableRef,
    output: String,
    gcs: bool,
    path_base: String,
    part: Option<Part>,
    commits: u64,
    rows: u64,
}

impl TableWriter {
    fn part(&mut self) -> Result<&mut Part> {
        if self.part.is_none() {
            let part = if self.gcs {
                let path = format!("{}-{}.parquet", self.path_base, self.commits);
                // Row groups of 128Ki rows: the writer holds a whole row
                // group encoded in memory, and Parquet's default (1Mi rows)
                // would take the run past 256 MB; BigQuery loads small
                // row groups as fast.
                let options = serde_json::json!({
                    "format": "parquet", "compression": "zstd", "staged": true,
                    "row_group_rows": 131_072,
                });
                let encoder = Encoder::create(&path, &self.schema, &options)?;
                Part::Staged { path, encoder }
            } else {
                Part::Uploading(Upload::create(&self.schema)?)
            };
            self.part = Some(part);
        }
        Ok(self.part.as_mut().expect("made above"))
    }
}

impl Writer for TableWriter {
    fn write(&mut self, batch: Batch) -> Result<()> {
        let rows = batch.num_rows();
        match self.part()? {
            Part::Staged { encoder, .. } => encoder.write(&batch)?,
            Part::Uploading(upload) => upload.write(&batch)?,
        }
        self.rows += rows;
        Ok(())
    }

    fn commit(&mut self) -> Result<CommitInfo> {
        let rows = std::mem::take(&mut self.rows);
        let Some(part) = self.part.take() else {
            return Ok(CommitInfo {
                rows: 0,
                bytes: 0,
                outputs: vec![self.output.clone()],
            });
        };
        self.commits += 1;
        let (job, bytes) = match part {
            Part::Staged { path, encoder } => {
                let bytes = encoder.finish()?;
                let job = bigquery::load_objects(
                    &self.load_into,
                    std::slice::from_ref(&path),
                    WriteMode::Append,
                );
                // Loaded or not, the staged Parquet is not kept.
                let _ = blob::discard(&path);
                (job?, bytes)
            }
            Part::Uploading(upload) => {
                let job = upload.load(&self.load_into, WriteMode::Append)?;
                let bytes = job.bytes;
                (job, bytes)
            }
        };
        if job.rows != rows {
            return Err(Error::data(format!(
                "BigQuery job {} loaded {} row(s) into {} where {rows} were written",
                job.id, job.rows, self.load_into
            )));
        }
        Ok(CommitInfo {
            rows,
            bytes,
            outputs: vec![self.output.clone()],
        })
    }

    fn abort(&mut self) {
        // An unfinished encoder or upload leaves nothing when dropped; a
        // finished staged object is discarded unpublished.
        if let Some(Part::Staged { path, .. }) = self.part.take() {
            let _ = blob::discard(&path);
        }
        self.rows = 0;
    }
}

sluice_sdk::export_sink!(BigQuerySink);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: serde_json::Value) -> Config {
        let mut c = serde_json::json!({"dataset": "analytics"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(c).unwrap()
    }

    #[test]
    fn tables_take_the_stream_and_stage_beside_it() {
        let c = config(serde_json::json!({"table": "raw_{stream}", "mode": "merge"}));
        assert_eq!(c.target("orders").to_string(), "analytics.raw_orders");
        assert_eq!(
            c.staging("orders").to_string(),
            "analytics.raw_orders__sluice_staging"
        );
        assert!(c.staged());
        assert!(!config(serde_json::json!({})).staged());
    }

    #[test]
    fn delete_range_defaults_to_the_partition_column() {
        let c = config(serde_json::json!({
            "mode": "delete_in_advance",
            "partition_by": {"column": "day"},
            "delete_range": {"from": "2026-12-01"}
        }));
        assert_eq!(
            c.delete_range().unwrap(),
            Some(("day".into(), Some("2026-12-01".into()), None))
        );
        let c = config(serde_json::json!({"mode": "delete_in_advance", "delete_range": {}}));
        assert!(c.delete_range().is_err());
    }

    #[test]
    fn the_merge_key_survives_in_the_staging_table() {
        let info = bigquery::TableInfo {
            fields: vec![serde_json::json!({
                "name": "id", "type": "INTEGER",
                "description": key_description(&["id".into(), "day".into()])
            })],
            rows: 0,
            partition_column: None,
            clustering: vec![],
        };
        assert_eq!(primary_key_of(&info).unwrap(), vec!["id", "day"]);
    }
}
