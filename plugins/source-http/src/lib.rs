//! `http`: records from a REST/JSON API.
//!
//! One GET per page through the host's `http` grant; the records are the
//! array at `records` (a dotted path) in each JSON response. Pagination by
//! a next link in the body, the `Link: <…>; rel="next"` header, a cursor,
//! an offset or a page number. 429 and 5xx are retried with exponential
//! backoff (honouring `Retry-After`); `rate_limit` spaces requests out.
//! Column types are inferred from the first page (override with `columns`);
//! later pages must fit them. With `incremental`, the largest value of a
//! field seen is saved and sent as a query parameter on the next run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sluice_sdk::http::{Request, Response, send};
use sluice_sdk::{
    Batch, Error, Event, Info, Partition, Reader, Result, Source, StreamInfo, SyncMode,
    export_source,
};

/// The http source's config.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// Changing these changes how, not what, it reads or writes: saved state
// is kept (the host leaves them out of the state key).
#[schemars(extend("x-sluice-state-ignores" = ["rate_limit", "retries", "backoff_ms", "max_pages"]))]
pub struct Config {
    /// The first page: `https://api.example.com/v1/orders`. `{cursor}` in
    /// it is replaced by the incremental value (URL-encoded), for APIs that
    /// take it in the path (`…/changes/since/{cursor}`).
    pub url: String,
    /// Query parameters added to every request.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Request headers; values may hold `${secret:name}` (filled in by the host).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Dotted path to the records array (`data.items`); empty: the response is the array.
    #[serde(default)]
    pub records: String,
    /// How to get the next page.
    #[serde(default)]
    pub pagination: Pagination,
    /// Save the largest `field` seen and send it as `param` next run.
    #[serde(default)]
    pub incremental: Option<Incremental>,
    /// Most requests per second (default: no limit).
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// Retries of a request answered 429 or 5xx, or cut off (default 5).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First backoff, milliseconds; it doubles each retry (default 500).
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
    /// Stop after this many pages.
    #[serde(default)]
    pub max_pages: Option<u64>,
    /// Stream name (default `records`).
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Column types overriding inference: `{id: int64, amount: float64}`.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

fn default_retries() -> u32 {
    5
}
fn default_backoff() -> u64 {
    500
}
fn default_stream() -> String {
    "records".into()
}

/// How the next page is found.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One request.
    #[default]
    None,
    /// The next page's URL is at `path` in the body (absent or null: done).
    NextLink {
        /// Dotted path, e.g. `links.next`.
        path: String,
    },
    /// The `Link: <url>; rel="next"` response header.
    LinkHeader,
    /// A cursor at `path` in the body, sent back as query parameter `param`.
    Cursor {
        /// Dotted path of the next cursor (absent, null or empty: done).
        path: String,
        /// Query parameter carrying it.
        param: String,
    },
    /// `param` = 0, limit, 2·limit, … until a page has fewer than `limit` records.
    Offset {
        /// Query parameter of the offset.
        param: String,
        /// Records per page.
        limit: u64,
        /// Query parameter of the page size.
        limit_param: String,
    },
    /// `param` = start, start+1, … until a page is empty.
    Page {
        /// Query parameter of the page number.
        param: String,
        /// The first page's number (default 1).
        #[serde(default = "one")]
        start: u64,
    },
}

fn one() -> u64 {
    1
}

/// Incremental reads by a field of the records.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// The record field that grows (`updated_at`); ISO 8601 text or numbers.
    pub field: String,
    /// Query parameter sent with the saved value (`updated_since`); unused
    /// when the URL holds `{cursor}`.
    #[serde(default)]
    pub param: String,
    /// Value for the first run (default: nothing sent).
    #[serde(default)]
    pub start: Option<String>,
}

/// The value at a dotted path.
pub fn at_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .try_fold(value, |v, key| match v {
            Value::Object(m) => m.get(key),
            Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
}

/// The `rel="next"` target of a `Link` header.
pub fn next_from_link_header(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
        let target = target.trim();
        (is_next && target.starts_with('<') && target.ends_with('>'))
            .then(|| target[1..target.len() - 1].to_string())
    })
}

/// `s` percent-encoded for a URL's path or query.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `url` with `params` appended as a query string (percent-encoded).
pub fn with_query(url: &str, params: &BTreeMap<String, String>) -> String {
    if params.is_empty() {
        return url.to_string();
    }
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", query.join("&"))
}

/// Resolve a next link relative to the page it came from.
fn absolute(base: &str, link: &str) -> String {
    if link.starts_with("http://") || link.starts_with("https://") {
        return link.to_string();
    }
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let origin_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    if link.starts_with('/') {
        format!("{}{link}", &base[..origin_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|&i| i >= origin_end)
            .unwrap_or(origin_end);
        format!("{}/{link}", &base[..dir_end])
    }
}

/// The records of a page, as JSON objects.
fn page_records(body: &Value, path: &str, url: &str) -> Result<Vec<Value>> {
    match at_path(body, path) {
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(Value::Null) | None if !path.is_empty() => Ok(Vec::new()),
        _ => Err(Error::data(format!(
            "{url}: no array at records path {path:?} in the response"
        ))),
    }
}

/// The schema of `records`, with `columns` overriding what was inferred.
pub fn infer_schema(records: &[Value], columns: &BTreeMap<String, String>) -> Result<SchemaRef> {
    let inferred = arrow_json::reader::infer_json_schema_from_iterator(records.iter().map(Ok))
        .map_err(|e| Error::data(format!("cannot infer column types: {e}")))?;
    let mut fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| Field::new(f.name(), f.data_type().clone(), true))
        .collect();
    for (name, type_name) in columns {
        let ty: DataType = sluice_sdk::types::parse_type(type_name)
            .map_err(|e| Error::config(format!("source.config.columns.{name}: {e}")))?;
        match fields.iter_mut().find(|f| f.name() == name) {
            Some(f) => *f = Field::new(name, ty, true),
            None => fields.push(Field::new(name, ty, true)),
        }
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// Decode `records` into a batch of `schema`.
fn to_batch(records: &[Value], schema: &SchemaRef, url: &str) -> Result<Batch> {
    let mut decoder = arrow_json::ReaderBuilder::new(schema.clone())
        .with_coerce_primitive(true)
        .build_decoder()
        .map_err(|e| Error::internal(e.to_string()))?;
    decoder
        .serialize(records)
        .map_err(|e| Error::data(format!("{url}: a record does not fit the columns: {e}")))?;
    let batch = decoder
        .flush()
        .map_err(|e| Error::data(format!("{url}: {e}")))?
        .unwrap_or_else(|| arrow_array::RecordBatch::new_empty(schema.clone()));
    Batch::from_record_batch(&batch)
}

/// Whether `a` sorts after `b` as cursor values (numbers numerically).
fn later(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x > y,
        _ => a > b,
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Sleep in the sandbox (monotonic clock).
fn sleep(d: Duration) {
    #[cfg(target_arch = "wasm32")]
    wasip2::clocks::monotonic_clock::subscribe_duration(d.as_nanos() as u64).block();
    #[cfg(not(target_arch = "wasm32"))]
    std::thread::sleep(d);
}

/// The plugin.
pub struct HttpSource;

impl Source for HttpSource {
    type Config = Config;
    type Reader = HttpReader;

    fn info() -> Info {
        Info {
            name: "http",
            version: env!("CARGO_PKG_VERSION"),
            description: "Records from a REST/JSON API: pagination, retries, rate limit, incremental",
            capabilities: &["http"],
        }
    }

    fn check(config: &Config) -> Result<()> {
        sluice_sdk::http::split_url(&config.url)?;
        for (name, ty) in &config.columns {
            sluice_sdk::types::parse_type(ty)
                .map_err(|e| Error::config(format!("source.config.columns.{name}: {e}")))?;
        }
        Ok(())
    }

    fn discover(config: &Config) -> Result<Vec<StreamInfo>> {
        // The first page tells the columns.
        let mut reader = HttpReader::new(config.clone(), None);
        let records = reader.fetch_page()?;
        Ok(vec![StreamInfo {
            name: config.stream.clone(),
            schema: Some(infer_schema(&records, &config.columns)?),
            primary_key: Vec::new(),
            cursor_fields: config.incremental.iter().map(|i| i.field.clone()).collect(),
            sync_modes: vec![SyncMode::FullRefresh, SyncMode::Incremental],
        }])
    }

    fn open(config: Config, _partition: Partition, state: Option<String>) -> Result<HttpReader> {
        Ok(HttpReader::new(config, state))
    }
}

/// Reads pages until the pagination says there are no more.
pub struct HttpReader {
    config: Config,
    next: Option<NextPage>,
    pages: u64,
    schema: Option<SchemaRef>,
    /// The largest incremental field value seen (or saved before).
    cursor: Option<String>,
    last_request: Option<Instant>,
    done: bool,
}

/// What to request next.
enum NextPage {
    Url(String),
    Params(BTreeMap<String, String>),
}

impl HttpReader {
    fn new(config: Config, state: Option<String>) -> HttpReader {
        let cursor = state
            .filter(|s| !s.is_empty())
            .or_else(|| config.incremental.as_ref().and_then(|i| i.start.clone()));
        let mut first = BTreeMap::new();
        match &config.pagination {
            Pagination::Offset {
                param,
                limit,
                limit_param,
            } => {
                first.insert(param.clone(), "0".into());
                first.insert(limit_param.clone(), limit.to_string());
            }
            Pagination::Page { param, start } => {
                first.insert(param.clone(), start.to_string());
            }
            _ => {}
        }
        HttpReader {
            next: Some(NextPage::Params(first)),
            config,
            pages: 0,
            schema: None,
            cursor,
            last_request: None,
            done: false,
        }
    }

    /// The URL of the next request, or `None` when there are no more pages.
    fn next_url(&mut self) -> Option<String> {
        match self.next.take()? {
            NextPage::Url(url) => Some(url),
            NextPage::Params(extra) => {
                let mut params = self.config.params.clone();
                // `{cursor}` in the URL: the value there (empty on a first run).
                let url = self
                    .config
                    .url
                    .replace("{cursor}", &encode(self.cursor.as_deref().unwrap_or("")));
                if let (Some(inc), Some(cursor)) = (&self.config.incremental, &self.cursor)
                    && !self.config.url.contains("{cursor}")
                {
                    params.insert(inc.param.clone(), cursor.clone());
                }
                params.extend(extra);
                Some(with_query(&url, &params))
            }
        }
    }

    /// GET with retries on 429, 5xx and broken connections.
    fn get(&mut self, url: &str) -> Result<Response> {
        let mut attempt = 0;
        loop {
            if let (Some(rate), Some(last)) = (self.config.rate_limit, self.last_request) {
                let gap = Duration::from_secs_f64(1.0 / rate.max(0.001));
                let since = last.elapsed();
                if since < gap {
                    sleep(gap - since);
                }
            }
            self.last_request = Some(Instant::now());
            let mut request = Request::get(url).header("accept", "application/json");
            for (k, v) in &self.config.headers {
                request = request.header(k, v);
            }
            let outcome = send(&request);
            let retry_after = match &outcome {
                Ok(r) if r.status == 429 || r.status >= 500 => Some(
                    r.header("retry-after")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs),
                ),
                Err(e) if e.kind == sluice_sdk::ErrorKind::Transient => Some(None),
                _ => None,
            };
            match (retry_after, outcome) {
                (Some(wait), outcome) if attempt < self.config.retries => {
                    let backoff = Duration::from_millis(self.config.backoff_ms << attempt.min(16));
                    let wait = wait.unwrap_or(backoff).min(Duration::from_secs(300));
                    let why = match &outcome {
                        Ok(r) => format!("HTTP {}", r.status),
                        Err(e) => e.message.clone(),
                    };
                    sluice_sdk::log::warn(&format!(
                        "{url}: {why}; retry {} of {} in {:.1} s",
                        attempt + 1,
                        self.config.retries,
                        wait.as_secs_f64()
                    ));
                    sleep(wait);
                    attempt += 1;
                }
                (_, Ok(r)) if r.status >= 400 => {
                    let body =
                        String::from_utf8_lossy(&r.body[..r.body.len().min(300)]).into_owned();
                    let error = format!("{url}: HTTP {}: {body}", r.status);
                    return Err(match r.status {
                        401 | 403 => Error::auth(error),
                        429 | 500.. => Error::transient(error),
                        _ => Error::config(error),
                    });
                }
                (_, outcome) => return outcome,
            }
        }
    }

    /// Fetch the next page's records, and work out the page after it.
    fn fetch_page(&mut self) -> Result<Vec<Value>> {
        let Some(url) = self.next_url() else {
            return Ok(Vec::new());
        };
        let response = self.get(&url)?;
        let body: Value = serde_json::from_slice(&response.body).map_err(|e| {
            Error::data(format!(
                "{url}: the response is not JSON ({e}): {}",
                String::from_utf8_lossy(&response.body[..response.body.len().min(200)])
            ))
        })?;
        let records = page_records(&body, &self.config.records, &url)?;
        self.pages += 1;
        self.next = match &self.config.pagination {
            Pagination::None => None,
            Pagination::NextLink { path } => at_path(&body, path)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(|link| NextPage::Url(absolute(&url, link))),
            Pagination::LinkHeader => response
                .header("link")
                .and_then(next_from_link_header)
                .map(|link| NextPage::Url(absolute(&url, &link))),
            Pagination::Cursor { path, param } => at_path(&body, path)
                .and_then(text_of)
                .filter(|s| !s.is_empty())
                .map(|c| NextPage::Params([(param.clone(), c)].into())),
            Pagination::Offset {
                param,
                limit,
                limit_param,
            } => (records.len() as u64 >= *limit).then(|| {
                let offset = self.pages * limit;
                NextPage::Params(
                    [
                        (param.clone(), offset.to_string()),
                        (limit_param.clone(), limit.to_string()),
                    ]
                    .into(),
                )
            }),
            Pagination::Page { param, start } => (!records.is_empty()).then(|| {
                NextPage::Params([(param.clone(), (start + self.pages).to_string())].into())
            }),
        };
        if self.config.max_pages.is_some_and(|m| self.pages >= m) {
            self.next = None;
        }
        Ok(records)
    }
}

impl Reader for HttpReader {
    fn next(&mut self) -> Result<Option<Event>> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.next.is_none() {
                self.done = true;
                // The largest cursor seen: where the next run starts.
                return Ok(match (&self.config.incremental, &self.cursor) {
                    (Some(_), Some(c)) => Some(Event::Checkpoint(c.clone())),
                    _ => None,
                });
            }
            let url_hint = self.config.url.clone();
            let records = self.fetch_page()?;
            if records.is_empty() {
                continue;
            }
            if let Some(inc) = &self.config.incremental {
                for r in &records {
                    if let Some(v) = r.get(&inc.field).and_then(text_of)
                        && self.cursor.as_ref().is_none_or(|c| later(&v, c))
                    {
                        self.cursor = Some(v);
                    }
                }
            }
            let schema = match &self.schema {
                Some(s) => s.clone(),
                None => {
                    let s = infer_schema(&records, &self.config.columns)?;
                    self.schema = Some(s.clone());
                    s
                }
            };
            return Ok(Some(Event::Batch(to_batch(&records, &schema, &url_hint)?)));
        }
    }
}

export_source!(HttpSource);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_links_and_queries() {
        let v = json!({"data": {"items": [1, 2]}, "links": {"next": "/p2"}});
        assert_eq!(at_path(&v, "data.items"), Some(&json!([1, 2])));
        assert_eq!(at_path(&v, "links.next"), Some(&json!("/p2")));
        assert_eq!(at_path(&v, ""), Some(&v));
        assert_eq!(at_path(&v, "nope.x"), None);
        assert_eq!(
            next_from_link_header(
                r#"<https://a/x?page=2>; rel="next", <https://a/x?page=9>; rel="last""#
            ),
            Some("https://a/x?page=2".into())
        );
        assert_eq!(next_from_link_header(r#"<https://a/x>; rel="prev""#), None);
        assert_eq!(
            with_query(
                "http://h/x",
                &[("a b".to_string(), "1&2".to_string())].into()
            ),
            "http://h/x?a%20b=1%262"
        );
        assert_eq!(
            absolute("http://h:1/v1/items?p=1", "/v1/items?p=2"),
            "http://h:1/v1/items?p=2"
        );
        assert_eq!(
            absolute("http://h/v1/items", "items?p=2"),
            "http://h/v1/items?p=2"
        );
        assert!(later("2024-01-02T00:00:00Z", "2024-01-01T23:59:59Z"));
        assert!(later("10", "9"));
    }

    #[test]
    fn types_are_inferred_with_overrides() {
        let records = vec![
            json!({"id": 1, "name": "a", "amount": 1.5}),
            json!({"id": 2, "name": null}),
        ];
        let schema =
            infer_schema(&records, &[("id".to_string(), "string".to_string())].into()).unwrap();
        assert_eq!(
            schema.field_with_name("id").unwrap().data_type(),
            &DataType::Utf8
        );
        assert_eq!(
            schema.field_with_name("amount").unwrap().data_type(),
            &DataType::Float64
        );
        let batch = to_batch(&records, &schema, "u").unwrap();
        assert_eq!(batch.num_rows(), 2);
    }
}
