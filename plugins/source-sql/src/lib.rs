//! Database sources (`postgres`, `mysql`): read tables and queries through
//! the host's `sql` capability. This crate is the shared implementation;
//! each plugin is a thin crate naming its [`Flavor`].
//!
//! Rows never enter the plugin: the host runs the statement (binary COPY),
//! converts rows to Arrow natively and the plugin passes the batch handles
//! on. The plugin decides *what* to read: the SQL for each partition, and
//! the state that makes the next run (or a resumed one) continue where this
//! one stopped.
//!
//! - full refresh: every run reads everything; a run that failed part-way
//!   resumes with the partitions it had not finished;
//! - incremental: each run reads the rows whose `(cursor…, key…)` tuple is
//!   past the last row read, in that order, with a checkpoint after every
//!   batch;
//! - partitions: one table read by N tasks over ranges of an integer key.

pub mod plan;

use std::sync::Arc;

use arrow_array::Array;
use arrow_schema::{DataType, Field, Schema};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value as Json;
use sluice_sdk::sql::{Connection, Dialect, Rows, Table};
use sluice_sdk::{Error, Event, Info, Partition, Reader, Result, Source, StreamInfo, SyncMode};

use plan::{Range, Select, State};

/// The source's config.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// Changing these changes how, not what, it reads or writes: saved state
// is kept (the host leaves them out of the state key).
#[schemars(extend("x-sluice-state-ignores" = ["batch_rows"]))]
pub struct Config {
    /// The connection to read: a name under the job's `connections:`,
    /// granted to this plugin with `grants: {sql: [name]}`.
    pub connection: String,
    /// The table to read (`orders`, `sales.orders`). Without `table` or
    /// `query`, `discover` lists every table.
    #[serde(default)]
    pub table: Option<String>,
    /// A query to read instead of a table.
    #[serde(default)]
    pub query: Option<String>,
    /// Columns to read, in this order (default: all).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Only rows matching this SQL condition, e.g. `status <> 'draft'`.
    #[serde(default, rename = "where")]
    pub filter: Option<String>,
    /// Read only what is new since the last run.
    #[serde(default)]
    pub incremental: Option<Incremental>,
    /// Tasks reading the table at once, over ranges of an integer key.
    #[serde(default = "one")]
    pub partitions: u32,
    /// The integer column the ranges split (default: a one-column integer
    /// primary key).
    #[serde(default)]
    pub partition_column: Option<String>,
    /// Rows per batch (default 16,384: as fast as larger batches, and with
    /// several partitions the batches in flight stay small).
    #[serde(default = "default_batch_rows")]
    pub batch_rows: u32,
    /// The stream's name (default: the table's, or `query`).
    #[serde(default)]
    pub stream: Option<String>,
}

/// Incremental reads.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// Columns that grow with every change, e.g. `[updated_at]`. Rows are
    /// read in `(cursor…, key…)` order; a NULL cursor is never read.
    pub cursor: Vec<String>,
    /// Columns that break ties between rows with the same cursor (default:
    /// the primary key; required for a query).
    #[serde(default)]
    pub key: Option<Vec<String>>,
}

fn one() -> u32 {
    1
}
fn default_batch_rows() -> u32 {
    16_384
}

pub use sluice_sdk::sql::Flavor;

/// A database source of one flavor.
pub struct SqlSource<F: Flavor>(std::marker::PhantomData<F>);

/// Everything a partition needs, resolved against the database.
struct Resolved {
    stream: String,
    /// The table read, as the catalog describes it (none for a query).
    table: Option<Table>,
    select: Select,
    incremental: bool,
    /// Partitions the config asks for, when there is a column to split.
    partitions: u32,
}

fn stream_name(config: &Config) -> String {
    config
        .stream
        .clone()
        .unwrap_or_else(|| match &config.table {
            Some(t) => t.rsplit('.').next().unwrap_or(t).to_string(),
            None => "query".into(),
        })
}

fn is_integer(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::UInt32
    )
}

/// Check every column the config names against the columns the database
/// has, and build the statement.
fn resolve(config: &Config, conn: &Connection) -> Result<Resolved> {
    let dialect = conn.dialect();
    let (relation, columns, table) = match (&config.table, &config.query) {
        (Some(_), Some(_)) => {
            return Err(Error::config("set `table` or `query`, not both"));
        }
        (None, None) => {
            return Err(Error::config(
                "set `table` (or `query`) to read; `sluice discover` lists the tables",
            ));
        }
        (Some(name), None) => {
            let t = conn.table(name)?;
            let relation = format!("{}.{}", dialect.quote(&t.namespace), dialect.quote(&t.name));
            let names: Vec<(String, DataType)> = t
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.arrow_type.clone()))
                .collect();
            (relation, names, Some(t))
        }
        (None, Some(query)) => {
            if config.columns.is_some() {
                return Err(Error::config(
                    "`columns` applies to a table; select the columns in the query",
                ));
            }
            let relation = format!("({query}) AS sluice_src");
            let probe = conn.query(&format!("SELECT * FROM {relation} WHERE 1 = 0"), &[], 1)?;
            let names = probe
                .schema()
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().clone()))
                .collect();
            (relation, names, None)
        }
    };
    let primary_key: &[String] = table.as_ref().map_or(&[], |t| &t.primary_key);
    let what = match &config.table {
        Some(t) => format!("table `{t}`"),
        None => "the query".into(),
    };
    let type_of = |field: &str, name: &str| -> Result<DataType> {
        columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| {
                let known: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
                Error::config(format!(
                    "{field}: {what} has no column `{name}` (columns: {})",
                    known.join(", ")
                ))
            })
    };
    let selected = config.columns.clone().unwrap_or_default();
    for c in &selected {
        type_of("columns", c)?;
    }
    let mut order = Vec::new();
    if let Some(inc) = &config.incremental {
        if inc.cursor.is_empty() {
            return Err(Error::config(
                "incremental.cursor: name at least one column",
            ));
        }
        for c in &inc.cursor {
            type_of("incremental.cursor", c)?;
        }
        let key = match &inc.key {
            Some(k) => k.clone(),
            None if config.query.is_some() => {
                return Err(Error::config(
                    "incremental.key: a query has no primary key; name the columns that make a row unique",
                ));
            }
            None => primary_key.to_vec(),
        };
        for c in &key {
            type_of("incremental.key", c)?;
        }
        order = inc.cursor.clone();
        for k in key {
            if !order.contains(&k) {
                order.push(k);
            }
        }
        if !selected.is_empty()
            && let Some(missing) = order.iter().find(|c| !selected.contains(c))
        {
            return Err(Error::config(format!(
                "columns: add `{missing}`: incremental reads need their cursor and key columns"
            )));
        }
    }
    let partition_column = match &config.partition_column {
        Some(c) => {
            let t = type_of("partition_column", c)?;
            if !is_integer(&t) {
                return Err(Error::config(format!(
                    "partition_column: `{c}` is {t}; ranges need an integer column"
                )));
            }
            Some(c.clone())
        }
        None if config.partitions > 1 => match primary_key {
            [k] if type_of("primary key", k).is_ok_and(|t| is_integer(&t)) => Some(k.clone()),
            _ => {
                return Err(Error::config(format!(
                    "partitions: {what} has no one-column integer primary key; set `partition_column`"
                )));
            }
        },
        None => None,
    };
    Ok(Resolved {
        stream: stream_name(config),
        table,
        select: Select {
            relation,
            columns: selected,
            filter: config.filter.clone(),
            not_null: config
                .incremental
                .as_ref()
                .map(|i| i.cursor.clone())
                .unwrap_or_default(),
            order,
            partition_column,
        },
        incremental: config.incremental.is_some(),
        partitions: config.partitions.max(1),
    })
}

/// The column most likely to be a change cursor.
fn suggested_cursor(t: &Table) -> Vec<String> {
    const NAMES: &[&str] = &[
        "updated_at",
        "modified_at",
        "last_modified",
        "updated",
        "modified",
        "changed_at",
    ];
    let timestamp = |c: &&sluice_sdk::sql::Column| {
        matches!(c.arrow_type, DataType::Timestamp(..) | DataType::Date32)
    };
    if let Some(c) = t
        .columns
        .iter()
        .filter(timestamp)
        .find(|c| NAMES.contains(&c.name.to_ascii_lowercase().as_str()))
    {
        return vec![c.name.clone()];
    }
    match t.primary_key.as_slice() {
        [k] if t.column(k).is_some_and(|c| is_integer(&c.arrow_type)) => vec![k.clone()],
        _ => Vec::new(),
    }
}

fn stream_info(t: &Table) -> StreamInfo {
    let fields: Vec<Field> = t
        .columns
        .iter()
        .map(|c| Field::new(&c.name, c.arrow_type.clone(), c.nullable))
        .collect();
    let cursor = suggested_cursor(t);
    let mut modes = vec![SyncMode::FullRefresh];
    if !cursor.is_empty() {
        modes.push(SyncMode::Incremental);
    }
    StreamInfo {
        name: format!("{}.{}", t.namespace, t.name),
        schema: Some(Arc::new(Schema::new(fields))),
        primary_key: t.primary_key.clone(),
        cursor_fields: cursor,
        sync_modes: modes,
    }
}

/// The smallest and largest value of the partition column.
fn key_bounds(conn: &Connection, r: &Resolved) -> Result<Option<(i64, i64)>> {
    let Some(pc) = &r.select.partition_column else {
        return Ok(None);
    };
    let pc = conn.dialect().quote(pc);
    let mut sql = format!(
        "SELECT CAST(min({pc}) AS BIGINT) AS lo, CAST(max({pc}) AS BIGINT) AS hi FROM {}",
        r.select.relation
    );
    if conn.dialect() == Dialect::MySql {
        sql = sql.replace("AS BIGINT", "AS SIGNED");
    }
    if let Some(f) = &r.select.filter {
        sql.push_str(&format!(" WHERE ({f})"));
    }
    let mut rows = conn.query(&sql, &[], 1)?;
    let Some(batch) = rows.next_batch()? else {
        return Ok(None);
    };
    let batch = batch.to_record_batch()?;
    let int = |i: usize| -> Option<i64> {
        let a = arrow_cast::cast(batch.column(i), &DataType::Int64).ok()?;
        let a = a.as_any().downcast_ref::<arrow_array::Int64Array>()?;
        (a.len() == 1 && a.is_valid(0)).then(|| a.value(0))
    };
    Ok(int(0).zip(int(1)))
}

impl<F: Flavor> Source for SqlSource<F> {
    type Config = Config;
    type Reader = TableReader;

    fn info() -> Info {
        Info {
            name: F::NAME,
            version: env!("CARGO_PKG_VERSION"),
            description: F::DESCRIPTION,
            capabilities: &["sql"],
        }
    }

    fn check(config: &Config) -> Result<()> {
        let conn = Connection::open_for::<F>(&config.connection)?;
        resolve(config, &conn).map(|_| ())
    }

    fn discover(config: &Config) -> Result<Vec<StreamInfo>> {
        let conn = Connection::open_for::<F>(&config.connection)?;
        if config.table.is_none() && config.query.is_none() {
            return Ok(conn.tables(None)?.iter().map(stream_info).collect());
        }
        let r = resolve(config, &conn)?;
        let probe = conn.query(
            &format!(
                "SELECT * FROM ({}) AS sluice_probe WHERE 1 = 0",
                r.select.sql(conn.dialect(), &Range::default(), None).0
            ),
            &[],
            1,
        )?;
        let (primary_key, cursor) = match &r.table {
            Some(t) => (t.primary_key.clone(), suggested_cursor(t)),
            None => (Vec::new(), Vec::new()),
        };
        Ok(vec![StreamInfo {
            name: r.stream,
            schema: Some(probe.schema().clone()),
            primary_key,
            cursor_fields: config
                .incremental
                .as_ref()
                .map_or(cursor, |i| i.cursor.clone()),
            sync_modes: vec![SyncMode::FullRefresh, SyncMode::Incremental],
        }])
    }

    fn partitions(config: &Config, stream: &str, state: Option<&str>) -> Result<Vec<Partition>> {
        let conn = Connection::open_for::<F>(&config.connection)?;
        let r = resolve(config, &conn)?;
        if stream != r.stream {
            return Err(Error::config(format!(
                "no stream `{stream}`; this source reads `{}`",
                r.stream
            )));
        }
        let saved: serde_json::Map<String, Json> = match state {
            Some(s) => serde_json::from_str(s)
                .map_err(|e| Error::internal(format!("unreadable saved state: {e}")))?,
            None => Default::default(),
        };
        let states: Vec<(String, State)> = saved
            .iter()
            .filter_map(|(id, v)| Some((id.clone(), State::parse(id, v.as_str()?).ok()?)))
            .collect();
        // Keep the earlier cut while it matches the config: each partition's
        // saved position is only valid for the same range.
        let wanted = r.partitions;
        let earlier = states
            .first()
            .map(|(_, s)| s.boundaries.clone())
            .filter(|b| b.len() + 1 == wanted as usize && r.select.partition_column.is_some());
        let all_done = !states.is_empty()
            && states.len() as u32 == wanted
            && states.iter().all(|(_, s)| s.done);
        let fresh = !r.incremental && (all_done || earlier.is_none() && !states.is_empty());
        let cut = match earlier {
            Some(b) if !fresh => b,
            _ => match key_bounds(&conn, &r)? {
                Some((lo, hi)) => plan::boundaries(lo, hi, wanted),
                None => Vec::new(),
            },
        };
        let n = cut.len() + 1;
        let mut out = Vec::new();
        for (i, mut range) in plan::ranges(&cut).into_iter().enumerate() {
            let id = format!("{i}/{n}");
            let finished = states.iter().any(|(sid, s)| *sid == id && s.done);
            if finished && !fresh {
                continue;
            }
            range.fresh = fresh;
            let spec = serde_json::json!({ "range": range, "boundaries": cut });
            out.push(Partition {
                stream: stream.to_string(),
                id,
                spec: spec.to_string(),
            });
        }
        Ok(out)
    }

    fn open(config: Config, partition: Partition, state: Option<String>) -> Result<TableReader> {
        #[derive(Deserialize)]
        struct Spec {
            range: Range,
            boundaries: Vec<i64>,
        }
        let spec: Spec = serde_json::from_str(&partition.spec)
            .map_err(|e| Error::internal(format!("partition {}: bad spec: {e}", partition.id)))?;
        let conn = Connection::open_for::<F>(&config.connection)?;
        let r = resolve(&config, &conn)?;
        let saved = match state {
            Some(s) if !spec.range.fresh => Some(State::parse(&partition.id, &s)?),
            _ => None,
        };
        let after = saved.as_ref().and_then(|s| s.after.clone());
        let after = after.filter(|_| r.incremental);
        let (sql, params) = r.select.sql(conn.dialect(), &spec.range, after.as_deref());
        let rows = conn.query(&sql, &params, config.batch_rows)?;
        let order_at = r
            .select
            .order
            .iter()
            .map(|c| {
                rows.schema().index_of(c).map_err(|_| {
                    Error::internal(format!("the result has no column `{c}` to track"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TableReader {
            rows,
            _conn: conn,
            order_at,
            incremental: r.incremental,
            state: State {
                boundaries: spec.boundaries,
                after,
                done: false,
            },
            checkpoint_due: false,
            finished: false,
        })
    }
}

/// Reads one partition, with a checkpoint after every batch (incremental)
/// or once at the end (full refresh).
pub struct TableReader {
    rows: Rows,
    _conn: Connection,
    order_at: Vec<usize>,
    incremental: bool,
    state: State,
    checkpoint_due: bool,
    finished: bool,
}

/// A one-row array's value as JSON: numbers stay numbers, everything else
/// is the database-readable text form.
fn json_value(array: &dyn Array) -> Result<Json> {
    if array.is_null(0) {
        return Ok(Json::Null);
    }
    if is_integer(array.data_type()) || matches!(array.data_type(), DataType::Int8) {
        let a = arrow_cast::cast(array, &DataType::Int64)?;
        let a = a
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .expect("cast to int64");
        return Ok(Json::from(a.value(0)));
    }
    // Instants are written in UTC with an explicit offset, which every
    // database reads (and which needs no time-zone database in the plugin).
    let (array, suffix) = match array.data_type() {
        DataType::Timestamp(unit, Some(_)) => (
            arrow_cast::cast(array, &DataType::Timestamp(*unit, None))?,
            "+00:00",
        ),
        _ => (arrow_array::make_array(array.to_data()), ""),
    };
    let formatter = arrow_cast::display::ArrayFormatter::try_new(
        array.as_ref(),
        &arrow_cast::display::FormatOptions::default(),
    )?;
    Ok(Json::String(format!("{}{suffix}", formatter.value(0))))
}

impl Reader for TableReader {
    fn next(&mut self) -> Result<Option<Event>> {
        if self.checkpoint_due {
            self.checkpoint_due = false;
            return Ok(Some(Event::Checkpoint(self.state.to_json())));
        }
        if self.finished {
            return Ok(None);
        }
        match self.rows.next_batch()? {
            Some(batch) => {
                if self.incremental && batch.num_rows() > 0 {
                    let last = batch.slice(batch.num_rows() - 1, 1).to_record_batch()?;
                    let values = self
                        .order_at
                        .iter()
                        .map(|&i| json_value(last.column(i).as_ref()))
                        .collect::<Result<Vec<_>>>()?;
                    self.state.after = Some(values);
                    self.checkpoint_due = true;
                }
                Ok(Some(Event::Batch(batch)))
            }
            None => {
                self.finished = true;
                if self.incremental {
                    return Ok(None);
                }
                self.state.done = true;
                Ok(Some(Event::Checkpoint(self.state.to_json())))
            }
        }
    }
}
