//! Datasets and tables: looked up, created from an Arrow schema, widened
//! with the columns a batch brings, dropped.

use arrow_schema::Schema;
use reqwest::Method;
use serde_json::{Value, json};
use sluice_codec::Error;

use crate::{BigQuery, TableRef, schema};

/// Time partitioning of a new table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitioning {
    /// A DATE, DATETIME or TIMESTAMP column.
    pub column: String,
    /// `hour`, `day`, `month` or `year`.
    pub granularity: String,
}

/// How a new table is laid out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableOptions {
    /// Time partitioning on a column.
    pub partitioning: Option<Partitioning>,
    /// Clustering columns, at most four.
    pub clustering: Vec<String>,
    /// Column descriptions, by column name.
    pub descriptions: Vec<(String, String)>,
    /// Drop the table this many hours after creation (staging tables, so
    /// one a killed run leaves behind does not stay for ever).
    pub expiration_hours: Option<u32>,
}

/// A table as BigQuery describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    /// BigQuery's `schema.fields`.
    pub fields: Vec<Value>,
    /// Rows, as BigQuery counts them (streaming buffers aside).
    pub rows: u64,
    /// The column the table is partitioned on, if any.
    pub partition_column: Option<String>,
    /// Its clustering columns.
    pub clustering: Vec<String>,
}

impl TableInfo {
    fn from_json(table: &Value) -> TableInfo {
        TableInfo {
            fields: table["schema"]["fields"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            rows: table["numRows"]
                .as_str()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            partition_column: table["timePartitioning"]["field"]
                .as_str()
                .map(str::to_string),
            clustering: table["clustering"]["fields"]
                .as_array()
                .map(|fs| {
                    fs.iter()
                        .filter_map(|f| f.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The names of its columns.
    pub fn columns(&self) -> Vec<String> {
        self.fields
            .iter()
            .filter_map(|f| f["name"].as_str().map(str::to_string))
            .collect()
    }
}

impl BigQuery {
    /// Check that a granted dataset can be reached; with `create`, create
    /// it (in the grant's location) when it is missing.
    ///
    /// # Errors
    /// A config error for a dataset not granted or missing, an auth error
    /// for credentials BigQuery refuses.
    pub fn dataset(&self, dataset: &str, create: bool) -> Result<(), Error> {
        self.granted(dataset)?;
        let what = format!("BigQuery dataset {}.{dataset}", self.grant.project);
        let url = self.dataset_url(dataset, "");
        if self.call(&what, Method::GET, &url, None, true)?.is_some() {
            return Ok(());
        }
        if !create {
            return Err(Error::config(format!("{what} does not exist")));
        }
        let mut body = json!({
            "datasetReference": {"projectId": self.grant.project, "datasetId": dataset}
        });
        if let Some(location) = &self.grant.location {
            body["location"] = Value::String(location.clone());
        }
        match self.call(
            &what,
            Method::POST,
            &self.url("datasets"),
            Some(&body),
            false,
        ) {
            Ok(_) => {
                tracing::info!(dataset, "created the BigQuery dataset");
                Ok(())
            }
            // Another task created it first.
            Err(e) => match self.call(&what, Method::GET, &url, None, true)? {
                Some(_) => Ok(()),
                None => Err(e),
            },
        }
    }

    /// The table, or none when it does not exist.
    ///
    /// # Errors
    /// A config error for a table outside the grant.
    pub fn table(&self, t: &TableRef) -> Result<Option<TableInfo>, Error> {
        self.granted_table(t)?;
        let what = format!("BigQuery table {t}");
        Ok(self
            .call(&what, Method::GET, &self.table_url(t), None, true)?
            .map(|table| TableInfo::from_json(&table)))
    }

    /// Make `t` ready for batches of `schema`: create it when missing
    /// (with `create`), add the nullable columns it lacks, and refuse a
    /// column whose type cannot take the data's, naming both types.
    ///
    /// # Errors
    /// A config error for what cannot be reconciled.
    pub fn conform_table(
        &self,
        t: &TableRef,
        schema: &Schema,
        options: &TableOptions,
        create: bool,
    ) -> Result<TableInfo, Error> {
        let fields = schema::bigquery_fields(schema.fields(), &options.descriptions)?;
        let Some(existing) = self.table(t)? else {
            if !create {
                return Err(Error::config(format!(
                    "BigQuery table {t} does not exist and `create` is false"
                )));
            }
            return self.create_table(t, fields, options);
        };
        let mut added = Vec::new();
        for (field, wanted) in schema.fields().iter().zip(&fields) {
            match existing
                .fields
                .iter()
                .find(|c| c["name"].as_str() == Some(field.name()))
            {
                Some(column) => schema::compatible(field, column).map_err(|data| {
                    Error::config(format!(
                        "column `{}` of BigQuery table {t} is {}, which cannot take the data's {data}; change the table or cast the column with a filter",
                        field.name(),
                        schema::type_name(column),
                    ))
                })?,
                None => added.push(wanted.clone()),
            }
        }
        if added.is_empty() {
            return Ok(existing);
        }
        let names: Vec<String> = added
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    f["name"].as_str().unwrap_or("?"),
                    schema::type_name(f)
                )
            })
            .collect();
        let mut all = existing.fields.clone();
        all.extend(added);
        let what = format!("BigQuery table {t}: adding columns {}", names.join(", "));
        let body = json!({"schema": {"fields": all}});
        match self.call(&what, Method::PATCH, &self.table_url(t), Some(&body), false) {
            Ok(patched) => {
                tracing::info!(table = %t, columns = %names.join(", "), "added columns to the BigQuery table");
                Ok(patched.map_or(existing, |p| TableInfo::from_json(&p)))
            }
            // A parallel task added them first.
            Err(e) => match self.table(t)? {
                Some(now)
                    if schema
                        .fields()
                        .iter()
                        .all(|f| now.columns().contains(f.name())) =>
                {
                    Ok(now)
                }
                _ => Err(e),
            },
        }
    }

    fn create_table(
        &self,
        t: &TableRef,
        fields: Vec<Value>,
        options: &TableOptions,
    ) -> Result<TableInfo, Error> {
        let mut body = json!({
            "tableReference": {
                "projectId": self.grant.project,
                "datasetId": t.dataset,
                "tableId": t.table,
            },
            "schema": {"fields": fields},
        });
        if let Some(p) = &options.partitioning {
            crate::dml::check_column(&p.column)?;
            let granularity = p.granularity.to_ascii_uppercase();
            if !["HOUR", "DAY", "MONTH", "YEAR"].contains(&granularity.as_str()) {
                return Err(Error::config(format!(
                    "partition granularity `{}`: use hour, day, month or year",
                    p.granularity
                )));
            }
            body["timePartitioning"] = json!({"type": granularity, "field": p.column});
        }
        if !options.clustering.is_empty() {
            if options.clustering.len() > 4 {
                return Err(Error::config(format!(
                    "BigQuery clusters on at most 4 columns, not {}",
                    options.clustering.len()
                )));
            }
            body["clustering"] = json!({"fields": options.clustering});
        }
        if let Some(hours) = options.expiration_hours {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let at = now.as_millis() + u128::from(hours) * 3_600_000;
            body["expirationTime"] = Value::String(at.to_string());
        }
        let what = format!("BigQuery table {t}: creating it");
        let url = self.dataset_url(&t.dataset, "/tables");
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.call(&what, Method::POST, &url, Some(&body), false) {
                Ok(created) => {
                    tracing::info!(table = %t, "created the BigQuery table");
                    return Ok(TableInfo::from_json(&created.unwrap_or_default()));
                }
                // Parallel tasks race to create it (BigQuery answers the
                // losers "duplicate"; an emulator may fail their commit):
                // theirs is as good as ours.
                Err(e) => match self.table(t)? {
                    Some(theirs) => return Ok(theirs),
                    None if attempt < 3 => {
                        tracing::debug!(table = %t, error = %e.message, "creating the table again");
                        std::thread::sleep(std::time::Duration::from_millis(200 * attempt));
                    }
                    None => return Err(e),
                },
            }
        }
    }

    /// Drop a table; a missing one is no error.
    ///
    /// # Errors
    /// When BigQuery refuses.
    pub fn drop_table(&self, t: &TableRef) -> Result<(), Error> {
        self.granted_table(t)?;
        let what = format!("BigQuery table {t}: dropping it");
        self.call(&what, Method::DELETE, &self.table_url(t), None, true)
            .map(|_| ())
    }
}
