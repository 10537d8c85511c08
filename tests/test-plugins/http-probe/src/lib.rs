//! A source that GETs each URL of its config through `wasi:http` and emits
//! one row per request (`url`, `status`, `bytes`, `body`, `error`), so tests
//! can see what the host's `http` grant let through, refused or cut off.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_sdk::{
    Batch, Event, Info, Partition, Reader, Result, Source, StreamInfo, export_source,
};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, IncomingBody, Method, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// `http://host:port/path` URLs, fetched in order.
    urls: Vec<String>,
    /// Request headers (values may hold `${secret:name}`).
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

struct HttpProbe;

/// One GET: `(status, body)` or the error the host reported.
fn get(
    url: &str,
    headers: &BTreeMap<String, String>,
) -> std::result::Result<(u16, Vec<u8>), String> {
    let (scheme, rest) = url.split_once("://").ok_or("no scheme")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let list: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&list).map_err(|e| format!("headers: {e:?}"))?;
    let request = OutgoingRequest::new(fields);
    request.set_method(&Method::Get).map_err(|_| "method")?;
    let scheme = if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request.set_scheme(Some(&scheme)).map_err(|_| "scheme")?;
    request
        .set_authority(Some(authority))
        .map_err(|_| "authority")?;
    request
        .set_path_with_query(Some(path))
        .map_err(|_| "path")?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    let response = loop {
        match pending.get() {
            Some(Ok(Ok(r))) => break r,
            Some(Ok(Err(code))) => return Err(format!("{code:?}")),
            Some(Err(())) => return Err("response taken twice".into()),
            None => pending.subscribe().block(),
        }
    };
    let status = response.status();
    let body = response.consume().map_err(|_| "body")?;
    let mut out = Vec::new();
    {
        let stream = body.stream().map_err(|_| "stream")?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(format!("body: {}", e.to_debug_string()));
                }
            }
        }
    }
    let _ = IncomingBody::finish(body);
    Ok((status, out))
}

impl Source for HttpProbe {
    type Config = Config;
    type Reader = ProbeReader;

    fn info() -> Info {
        Info {
            name: "http-probe",
            version: "0.1.0",
            description: "GETs URLs through wasi:http and reports each (tests only)",
            capabilities: &["http"],
        }
    }

    fn discover(_config: &Config) -> Result<Vec<StreamInfo>> {
        Ok(vec![StreamInfo {
            name: "probe".into(),
            schema: None,
            primary_key: vec![],
            cursor_fields: vec![],
            sync_modes: vec![sluice_sdk::SyncMode::FullRefresh],
        }])
    }

    fn open(config: Config, _partition: Partition, _state: Option<String>) -> Result<ProbeReader> {
        Ok(ProbeReader {
            config: Some(config),
        })
    }
}

struct ProbeReader {
    config: Option<Config>,
}

impl Reader for ProbeReader {
    fn next(&mut self) -> Result<Option<Event>> {
        let Some(config) = self.config.take() else {
            return Ok(None);
        };
        let (mut urls, mut status, mut bytes, mut bodies, mut errors) =
            (vec![], vec![], vec![], vec![], vec![]);
        for url in &config.urls {
            urls.push(url.clone());
            match get(url, &config.headers) {
                Ok((code, body)) => {
                    status.push(Some(code as i64));
                    bytes.push(Some(body.len() as i64));
                    bodies.push(Some(
                        String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                    ));
                    errors.push(None);
                }
                Err(e) => {
                    status.push(None);
                    bytes.push(None);
                    bodies.push(None);
                    errors.push(Some(e));
                }
            }
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("url", DataType::Utf8, false),
            Field::new("status", DataType::Int64, true),
            Field::new("bytes", DataType::Int64, true),
            Field::new("body", DataType::Utf8, true),
            Field::new("error", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(urls)),
                Arc::new(Int64Array::from(status)),
                Arc::new(Int64Array::from(bytes)),
                Arc::new(StringArray::from(bodies)),
                Arc::new(StringArray::from(errors)),
            ],
        )
        .map_err(|e| sluice_sdk::Error::internal(e.to_string()))?;
        Ok(Some(Event::Batch(Batch::from_record_batch(&batch)?)))
    }
}

export_source!(HttpProbe);
