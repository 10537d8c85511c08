//! `bigquery`: the datasets a job granted, in one project.
//!
//! The work is `sluice-bigquery`'s; this module checks the grant is there,
//! turns staged objects of the blob grant into the `gs://` URIs a load job
//! reads, keys the loads of a commit (see [`HostState::commit_key`]) and
//! speaks WIT.

use wasmtime::component::Resource;

use crate::batch::{Batch, decode_schema, encode_schema};
use crate::bindings::bigquery::{
    Host, HostRows, HostUpload, JobInfo, Param, TableInfo, TableOptions, TableRef, WriteMode,
};
use crate::bindings::types::Error as GuestError;
use crate::capability::{HostState, config_error, data_error};

pub use sluice_bigquery::{BigQuery, Upload};

use crate::capability::bigquery_rows::{Exported, QueryRows};

/// Where a keyed load reads its `i`th object, under the blob grant.
fn load_path(job: &str, i: usize) -> String {
    format!(".sluice-bigquery/{job}-{i}.parquet")
}

fn table_ref(t: TableRef) -> sluice_bigquery::TableRef {
    sluice_bigquery::TableRef {
        dataset: t.dataset,
        table: t.table,
    }
}

fn params(params: Vec<Param>) -> Vec<sluice_bigquery::Param> {
    params
        .into_iter()
        .map(|p| sluice_bigquery::Param {
            name: p.name,
            ty: p.type_,
            value: p.value,
        })
        .collect()
}

fn mode(m: WriteMode) -> sluice_bigquery::WriteMode {
    match m {
        WriteMode::Append => sluice_bigquery::WriteMode::Append,
        WriteMode::Truncate => sluice_bigquery::WriteMode::Truncate,
    }
}

fn job_info(j: sluice_bigquery::JobInfo) -> JobInfo {
    JobInfo {
        id: j.id,
        rows: j.rows,
        bytes: j.bytes,
    }
}

fn table_info(t: sluice_bigquery::TableInfo) -> TableInfo {
    TableInfo {
        fields: serde_json::Value::Array(t.fields).to_string(),
        rows: t.rows,
        partition_column: t.partition_column,
        clustering: t.clustering,
    }
}

fn table_options(o: TableOptions) -> sluice_bigquery::TableOptions {
    sluice_bigquery::TableOptions {
        partitioning: o.partitioning.map(|p| sluice_bigquery::Partitioning {
            column: p.column,
            granularity: p.granularity,
        }),
        clustering: o.clustering,
        descriptions: o.descriptions,
        expiration_hours: o.expiration_hours,
    }
}

impl HostState {
    fn bigquery(&self) -> Result<&BigQuery, GuestError> {
        self.grants.bigquery.as_ref().ok_or_else(|| {
            config_error(format!(
                "capability `bigquery` is not granted to plugin {}: add `grants: {{bigquery: {{project: …, datasets: […]}}}}` to it in the job",
                self.plugin
            ))
        })
    }

    /// The key a load made now is named by: during a commit, the commit's
    /// (the same commit retried after a crash gets the same key), with the
    /// table and the load's place among the commit's loads.
    fn load_key(&mut self, t: &sluice_bigquery::TableRef) -> Option<String> {
        let key = self.commit_key.as_ref()?;
        self.commit_loads += 1;
        Some(format!("{key}\n{t}\n{}", self.commit_loads))
    }

    /// The `gs://` URI a load job reads a path of the blob grant at:
    /// where a staged object's bytes wait, else the published object.
    ///
    /// A keyed load (one made in a commit) reads its objects under names
    /// derived from the job's id instead (`.sluice-bigquery/<job>-<i>`),
    /// published there first: a process killed while BigQuery runs the job
    /// leaves them for the commit made again, which finds them (and the
    /// job) instead of deleting what the job may still be reading as an
    /// orphan. They are deleted once the job is over.
    fn object_uri(
        &mut self,
        path: &str,
        keyed: Option<(&str, usize)>,
    ) -> Result<String, GuestError> {
        let store = self.blob_grant("bigquery.load-objects")?.store.clone();
        let no_uri = |what: &str| {
            config_error(format!(
                "BigQuery loads from GCS: `{what}` in {} has no gs:// URI; grant a gs:// prefix, or load with `upload`",
                store.location()
            ))
        };
        let Some((job, i)) = keyed else {
            let uri = match self.staged.get(path) {
                Some(staged) => staged.object.uri(),
                None => store.uri(path),
            };
            return uri
                .filter(|u| u.starts_with("gs://"))
                .ok_or_else(|| no_uri(path));
        };
        let load_path = load_path(job, i);
        let uri = store
            .uri(&load_path)
            .filter(|u| u.starts_with("gs://"))
            .ok_or_else(|| no_uri(path))?;
        if store.stat(&load_path)?.is_some() {
            // An earlier run of this commit put it there: the same rows.
            if let Some(staged) = self.staged.remove(path) {
                drop(staged.object);
                self.journal_settled(staged.token.as_deref());
            }
            return Ok(uri);
        }
        match self.staged.remove(path) {
            // One server-side copy from where it waits: a process killed in
            // between leaves the staged object to the journal, or the
            // whole object under its load name.
            Some(mut staged) => {
                let published = staged.object.publish_to(&load_path);
                drop(staged.object);
                self.journal_settled(staged.token.as_deref());
                published?;
            }
            None if store.stat(path)?.is_some() => store.rename(path, &load_path)?,
            None => {
                return Err(config_error(format!(
                    "plugin {}: nothing at {path} to load",
                    self.plugin
                )));
            }
        }
        Ok(uri)
    }
}

impl Host for HostState {
    fn project(&mut self) -> wasmtime::Result<String> {
        crate::call_log::host_function("bigquery.project");
        Ok(self
            .grants
            .bigquery
            .as_ref()
            .map(|b| b.project().to_string())
            .unwrap_or_default())
    }

    fn dataset(
        &mut self,
        dataset: String,
        create: bool,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        self.guard("bigquery.dataset", |state| {
            Ok((|| Ok(state.bigquery()?.dataset(&dataset, create)?))())
        })
    }

    fn table(&mut self, t: TableRef) -> wasmtime::Result<Result<Option<TableInfo>, GuestError>> {
        self.guard("bigquery.table", |state| {
            Ok((|| {
                Ok(state.bigquery()?.table(&table_ref(t))?.map(table_info))
            })())
        })
    }

    fn conform_table(
        &mut self,
        t: TableRef,
        schema: Vec<u8>,
        options: TableOptions,
        create: bool,
    ) -> wasmtime::Result<Result<TableInfo, GuestError>> {
        self.guard("bigquery.conform-table", |state| {
            Ok((|| {
                let schema = decode_schema(&schema).map_err(data_error)?;
                let bq = state.bigquery()?;
                let info =
                    bq.conform_table(&table_ref(t), &schema, &table_options(options), create)?;
                Ok(table_info(info))
            })())
        })
    }

    fn drop_table(&mut self, t: TableRef) -> wasmtime::Result<Result<(), GuestError>> {
        self.guard("bigquery.drop-table", |state| {
            Ok((|| Ok(state.bigquery()?.drop_table(&table_ref(t))?))())
        })
    }

    fn load_objects(
        &mut self,
        t: TableRef,
        paths: Vec<String>,
        m: WriteMode,
    ) -> wasmtime::Result<Result<JobInfo, GuestError>> {
        self.guard("bigquery.load-objects", |state| {
            Ok((|| {
                if paths.is_empty() {
                    return Err(config_error("load-objects needs at least one object"));
                }
                let t = table_ref(t);
                let key = state.load_key(&t);
                let bq = state.bigquery()?.clone();
                let job = key
                    .as_deref()
                    .map(|k| sluice_bigquery::job_id(bq.project(), Some(k)));
                let mut uris = Vec::new();
                for (i, p) in paths.iter().enumerate() {
                    uris.push(state.object_uri(p, job.as_deref().map(|j| (j, i)))?);
                }
                let loaded = bq.load_uris(&t, &uris, mode(m), key.as_deref());
                if let Some(job) = &job {
                    // The job is over, loaded or failed for good: its
                    // input goes.
                    let store = state.blob_grant("bigquery.load-objects")?.store.clone();
                    for i in 0..paths.len() {
                        if let Err(e) = store.delete(&load_path(job, i)) {
                            tracing::warn!(error = %e.message, "could not delete a loaded object");
                        }
                    }
                }
                Ok(job_info(loaded?))
            })())
        })
    }

    fn copy(
        &mut self,
        source: TableRef,
        target: TableRef,
        m: WriteMode,
    ) -> wasmtime::Result<Result<JobInfo, GuestError>> {
        self.guard("bigquery.copy", |state| {
            Ok((|| {
                let bq = state.bigquery()?;
                Ok(job_info(bq.copy(
                    &table_ref(source),
                    &table_ref(target),
                    mode(m),
                )?))
            })())
        })
    }

    fn merge(
        &mut self,
        target: TableRef,
        source: TableRef,
        key: Vec<String>,
    ) -> wasmtime::Result<Result<JobInfo, GuestError>> {
        self.guard("bigquery.merge", |state| {
            Ok((|| {
                let bq = state.bigquery()?;
                Ok(job_info(bq.merge(
                    &table_ref(target),
                    &table_ref(source),
                    &key,
                )?))
            })())
        })
    }

    fn describe(
        &mut self,
        statement: String,
        ps: Vec<Param>,
    ) -> wasmtime::Result<Result<Vec<u8>, GuestError>> {
        self.guard("bigquery.describe", |state| {
            Ok((|| {
                let fields = state.bigquery()?.check_select(&statement, &params(ps))?;
                let schema = sluice_bigquery::arrow_schema(&fields)?;
                Ok(encode_schema(&schema))
            })())
        })
    }

    fn query(
        &mut self,
        statement: String,
        ps: Vec<Param>,
        batch_rows: u32,
    ) -> wasmtime::Result<Result<Resource<QueryRows>, GuestError>> {
        self.guard("bigquery.query", |state| {
            let results = (|| {
                Ok(state
                    .bigquery()?
                    .select(&statement, &params(ps), batch_rows)?)
            })();
            match results {
                Ok(r) => Ok(Ok(state.table.push(QueryRows::Results(r))?)),
                Err(e) => Ok(Err(e)),
            }
        })
    }

    fn export(
        &mut self,
        statement: String,
        ps: Vec<Param>,
        path: String,
    ) -> wasmtime::Result<Result<Resource<QueryRows>, GuestError>> {
        self.guard("bigquery.export", |state| {
            let exported = (|| {
                let bq = state.bigquery()?.clone();
                let store = state.blob_grant("bigquery.export")?.store.clone();
                let dir = sluice_codec::store::normalize(&path)?;
                let uri = store
                    .uri(&format!("{dir}/part-*.parquet"))
                    .filter(|u| u.starts_with("gs://"))
                    .ok_or_else(|| {
                        config_error(format!(
                            "BigQuery exports to GCS: `{dir}` in {} has no gs:// URI; grant a gs:// prefix, or read with `results`",
                            store.location()
                        ))
                    })?;
                Exported::clear(&store, &dir)?;
                let fields = bq.export(&statement, &params(ps), &uri)?;
                let schema = sluice_bigquery::arrow_schema(&fields)?;
                Ok(Exported::open(store, &dir, schema, state.bytes_read.clone())?)
            })();
            match exported {
                Ok(e) => Ok(Ok(state.table.push(QueryRows::Exported(e))?)),
                Err(e) => Ok(Err(e)),
            }
        })
    }

    fn delete_rows(
        &mut self,
        t: TableRef,
        column: Option<String>,
        from: Option<String>,
        to: Option<String>,
    ) -> wasmtime::Result<Result<JobInfo, GuestError>> {
        self.guard("bigquery.delete-rows", |state| {
            Ok((|| {
                let bq = state.bigquery()?;
                let range = column
                    .as_deref()
                    .map(|c| (c, from.as_deref(), to.as_deref()));
                Ok(job_info(bq.delete_range(&table_ref(t), range)?))
            })())
        })
    }
}

impl HostRows for HostState {
    fn schema(&mut self, this: Resource<QueryRows>) -> wasmtime::Result<Vec<u8>> {
        self.guard_trap("bigquery.rows.schema", |state| {
            Ok(encode_schema(&state.table.get(&this)?.schema()))
        })
    }

    fn next(
        &mut self,
        this: Resource<QueryRows>,
    ) -> wasmtime::Result<Result<Option<Resource<Batch>>, GuestError>> {
        self.guard("bigquery.rows.next", |state| {
            match state.table.get_mut(&this)?.next_batch() {
                Ok(Some(batch)) => {
                    state.bytes_read.fetch_add(
                        batch.get_array_memory_size() as u64,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    Ok(Ok(Some(state.table.push(Batch(batch))?)))
                }
                Ok(None) => Ok(Ok(None)),
                Err(e) => Ok(Err(e.into())),
            }
        })
    }

    fn drop(&mut self, this: Resource<QueryRows>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl HostUpload for HostState {
    fn create(
        &mut self,
        schema: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<Upload>, GuestError>> {
        self.guard("bigquery.upload.create", |state| {
            let created = (|| {
                state.bigquery()?;
                let schema = decode_schema(&schema).map_err(data_error)?;
                Ok(Upload::new(schema)?)
            })();
            match created {
                Ok(u) => Ok(Ok(state.table.push(u)?)),
                Err(e) => Ok(Err(e)),
            }
        })
    }

    fn write(
        &mut self,
        this: Resource<Upload>,
        rows: Resource<Batch>,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        self.guard("bigquery.upload.write", |state| {
            let batch = state.table.get(&rows)?.0.clone();
            let written = state.table.get_mut(&this)?.write(&batch);
            Ok(written.map_err(GuestError::from))
        })
    }

    fn load(
        &mut self,
        this: Resource<Upload>,
        t: TableRef,
        m: WriteMode,
    ) -> wasmtime::Result<Result<JobInfo, GuestError>> {
        self.guard("bigquery.upload.load", |state| {
            let t = table_ref(t);
            let key = state.load_key(&t);
            let bq = match state.bigquery() {
                Ok(bq) => bq.clone(),
                Err(e) => return Ok(Err(e)),
            };
            let loaded = state
                .table
                .get_mut(&this)?
                .load(&bq, &t, mode(m), key.as_deref());
            Ok(loaded.map(job_info).map_err(GuestError::from))
        })
    }

    fn drop(&mut self, this: Resource<Upload>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
