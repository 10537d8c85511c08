//! Loading without GCS: batches are written as Parquet to a temporary
//! file (memory stays bounded however many rows come), which one load job
//! then takes as a resumable upload in 8 MiB chunks.

use std::io::{Read, Seek, SeekFrom};

use arrow_schema::SchemaRef;
use reqwest::Method;
use sluice_codec::{EncodeOptions, Encoder, Error, LocalStore};
use sluice_gcs::google::block_on;

use crate::jobs::{JobInfo, is_duplicate};
use crate::{BigQuery, TableRef, WriteMode, api};

/// Bytes per upload request: a multiple of 256 KiB, as resumable uploads
/// require.
const CHUNK: usize = 8 << 20;
const FILE: &str = "load.parquet";

/// Rows being gathered for one direct load.
pub struct Upload {
    dir: tempfile::TempDir,
    encoder: Option<Encoder>,
    rows: u64,
}

impl Upload {
    /// Start gathering batches of `schema`.
    ///
    /// # Errors
    /// When the temporary file cannot be made.
    pub fn new(schema: SchemaRef) -> Result<Upload, Error> {
        let dir = tempfile::Builder::new()
            .prefix("sluice-bigquery-")
            .tempdir()
            .map_err(|e| Error::io("a temporary directory for a BigQuery load", e))?;
        let store = LocalStore::open(dir.path())?;
        // Row groups of 128Ki rows bound what the writer holds encoded in
        // memory (Parquet's default is 1Mi rows).
        let options: EncodeOptions =
            serde_json::from_value(serde_json::json!({"format": "parquet", "compression": "zstd", "row_group_rows": 131_072}))
                .map_err(|e| Error::internal(format!("Parquet options: {e}")))?;
        let encoder = Encoder::create(&store, FILE, schema, &options)?;
        Ok(Upload {
            dir,
            encoder: Some(encoder),
            rows: 0,
        })
    }

    /// Add a batch.
    ///
    /// # Errors
    /// When the temporary file cannot be written (a full disk).
    pub fn write(&mut self, batch: &arrow_array::RecordBatch) -> Result<(), Error> {
        let encoder = self
            .encoder
            .as_mut()
            .ok_or_else(|| Error::internal("write after the BigQuery load was sent"))?;
        encoder.write(batch)?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Send what was written to `t` in one load job (none when no row was
    /// written). `key` names the job as in [`BigQuery::load_uris`].
    ///
    /// # Errors
    /// BigQuery's errors: a data error for rows it could not take.
    pub fn load(
        &mut self,
        bq: &BigQuery,
        t: &TableRef,
        mode: WriteMode,
        key: Option<&str>,
    ) -> Result<JobInfo, Error> {
        bq.granted_table(t)?;
        let mut encoder = self
            .encoder
            .take()
            .ok_or_else(|| Error::internal("the BigQuery load was sent already"))?;
        encoder.finish()?;
        if self.rows == 0 && mode == WriteMode::Append {
            return Ok(JobInfo::default());
        }
        let path = self.dir.path().join(FILE);
        let what = format!("loading BigQuery table {t} (direct upload)");
        let file = std::fs::File::open(&path).map_err(|e| Error::io(&what, e))?;
        let file = std::cell::RefCell::new(file);
        let size = file
            .borrow()
            .metadata()
            .map_err(|e| Error::io(&what, e))?
            .len();
        let info = bq.run_job_with(&what, key, |id| {
            let body = bq.job_body(id, bq.load_config(t, mode));
            match bq.upload(&what, &body, &mut file.borrow_mut(), size) {
                Ok(job) => Ok((job, false)),
                // Sent before (a retried commit): follow that job.
                Err(e) if is_duplicate(&e) => Ok((
                    serde_json::json!({"jobReference": {"jobId": id}, "status": {}}),
                    true,
                )),
                Err(e) => Err(e),
            }
        })?;
        self.rows = 0;
        Ok(info)
    }
}

impl BigQuery {
    /// A resumable upload of `file` with the load job `body`: the job as
    /// BigQuery answered the last chunk.
    fn upload(
        &self,
        what: &str,
        body: &serde_json::Value,
        file: &mut std::fs::File,
        size: u64,
    ) -> Result<serde_json::Value, Error> {
        let start = format!(
            "{}/upload/bigquery/v2/projects/{}/jobs?uploadType=resumable",
            self.client.base(),
            sluice_gcs::google::segment(&self.grant.project)
        );
        let text = body.to_string();
        block_on(async {
            let response = self
                .client
                .send(what, || {
                    self.client
                        .http
                        .request(Method::POST, &start)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .header("X-Upload-Content-Type", "application/octet-stream")
                        .header("X-Upload-Content-Length", size.to_string())
                        .body(text.clone())
                })
                .await?;
            if !response.status().is_success() {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                return Err(api::classify(status, &body, what));
            }
            let session = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(|l| self.client.session_url(l))
                .ok_or_else(|| {
                    Error::internal(format!("{what}: BigQuery started no upload session"))
                })?;
            let mut offset = 0u64;
            let mut buffer = vec![0u8; CHUNK];
            loop {
                file.seek(SeekFrom::Start(offset))
                    .map_err(|e| Error::io(what, e))?;
                let n = read_full(file, &mut buffer).map_err(|e| Error::io(what, e))?;
                let last = offset + n as u64 >= size;
                let range = if n == 0 {
                    format!("bytes */{size}")
                } else {
                    format!("bytes {}-{}/{}", offset, offset + n as u64 - 1, size)
                };
                let chunk = bytes::Bytes::copy_from_slice(&buffer[..n]);
                let response = self
                    .client
                    .send(what, || {
                        self.client
                            .http
                            .request(Method::PUT, &session)
                            .header(reqwest::header::CONTENT_RANGE, range.clone())
                            .body(chunk.clone())
                    })
                    .await?;
                let status = response.status().as_u16();
                if status == 308 {
                    // More wanted: from the byte after what BigQuery holds.
                    offset = response
                        .headers()
                        .get(reqwest::header::RANGE)
                        .and_then(|r| r.to_str().ok())
                        .and_then(|r| r.rsplit('-').next())
                        .and_then(|end| end.parse::<u64>().ok())
                        .map_or(offset + n as u64, |end| end + 1);
                    if last && offset >= size {
                        return Err(Error::internal(format!(
                            "{what}: BigQuery wants more than the {size} bytes there are"
                        )));
                    }
                    continue;
                }
                return api::json(response, what).await;
            }
        })
    }
}

/// Fill `buffer` as far as the file allows.
fn read_full(file: &mut std::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
