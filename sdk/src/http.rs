//! Outgoing HTTP through the standard `wasi:http` interfaces.
//!
//! The host sends a request only to the hosts the job granted
//! (`grants: {http: {hosts: […]}}`), caps its timeouts and response size,
//! and fills `${secret:name}` placeholders in header values: write the
//! placeholder from your config into a header and the value never enters
//! the plugin. Redirects are not followed here: a plugin that follows one
//! sends a new request, which the grant checks again.
//!
//! Natively (the test harness) there is no network: [`send`] returns an
//! error, so test the logic around your requests with canned responses.

use crate::{Error, Result};

/// A request to send.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// `https://host[:port]/path?query`.
    pub url: String,
    /// Header names and values (values may hold `${secret:name}`).
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

impl Request {
    /// A GET of `url`.
    pub fn get(url: impl Into<String>) -> Request {
        Request {
            method: "GET".into(),
            url: url.into(),
            ..Request::default()
        }
    }

    /// Add a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A response, with its whole body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Split `scheme://authority/path?query`.
///
/// # Errors
/// A config error for anything that is not an http(s) URL.
pub fn split_url(url: &str) -> Result<(bool, &str, &str)> {
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(Error::config(format!(
            "`{url}` is not an http:// or https:// URL"
        )));
    };
    let cut = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(cut);
    if authority.is_empty() {
        return Err(Error::config(format!("`{url}` names no host")));
    }
    Ok((https, authority, if path.is_empty() { "/" } else { path }))
}

/// Send `request` and read the whole response.
///
/// # Errors
/// A config error when the grant does not allow the host (or a secret
/// the headers name), a transient error for timeouts and broken
/// connections, a data error for a response over the grant's size cap.
pub fn send(request: &Request) -> Result<Response> {
    #[cfg(target_arch = "wasm32")]
    return wasi::send(request);
    #[cfg(not(target_arch = "wasm32"))]
    {
        split_url(&request.url)?;
        Err(Error::internal(
            "http is not available in the native test harness",
        ))
    }
}

#[cfg(target_arch = "wasm32")]
mod wasi {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
    };
    use wasip2::io::streams::StreamError;

    use super::{Request, Response, split_url};
    use crate::{Error, Result};

    fn error(url: &str, code: ErrorCode) -> Error {
        match code {
            ErrorCode::HttpRequestDenied => Error::config(format!(
                "{url}: the host is not granted to this plugin: add it to the job's grants.http.hosts"
            )),
            ErrorCode::InternalError(Some(message)) => Error::config(format!("{url}: {message}")),
            ErrorCode::HttpResponseBodySize(size) => Error::data(format!(
                "{url}: the response is larger than the grant's max_response_mb{}",
                size.map(|s| format!(" ({s} bytes)")).unwrap_or_default()
            )),
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::ConnectionRefused
            | ErrorCode::ConnectionTerminated
            | ErrorCode::DnsTimeout
            | ErrorCode::HttpResponseTimeout => Error::transient(format!("{url}: {code:?}")),
            other => Error::transient(format!("{url}: {other:?}")),
        }
    }

    pub(super) fn send(request: &Request) -> Result<Response> {
        let url = request.url.as_str();
        let (https, authority, path) = split_url(url)?;
        let list: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
            .collect();
        let fields = Fields::from_list(&list)
            .map_err(|e| Error::config(format!("{url}: bad header: {e:?}")))?;
        let outgoing = OutgoingRequest::new(fields);
        let method = match request.method.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "HEAD" => Method::Head,
            other => Method::Other(other.to_string()),
        };
        let bad = |what: &str| Error::config(format!("{url}: bad {what}"));
        outgoing.set_method(&method).map_err(|_| bad("method"))?;
        let scheme = if https { Scheme::Https } else { Scheme::Http };
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|_| bad("scheme"))?;
        outgoing
            .set_authority(Some(authority))
            .map_err(|_| bad("host"))?;
        outgoing
            .set_path_with_query(Some(path))
            .map_err(|_| bad("path"))?;
        let body = outgoing.body().map_err(|_| bad("body"))?;
        // Send first, then stream the body into the request in flight.
        let pending = outgoing_handler::handle(outgoing, None).map_err(|e| error(url, e))?;
        if let Some(data) = &request.body {
            let stream = body.write().map_err(|_| bad("body"))?;
            for chunk in data.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| Error::transient(format!("{url}: sending the body: {e:?}")))?;
            }
        }
        OutgoingBody::finish(body, None).map_err(|e| error(url, e))?;
        let response = loop {
            match pending.get() {
                Some(Ok(Ok(r))) => break r,
                Some(Ok(Err(code))) => return Err(error(url, code)),
                Some(Err(())) => return Err(Error::internal("response taken twice")),
                None => pending.subscribe().block(),
            }
        };
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let incoming = response
            .consume()
            .map_err(|_| Error::internal("body taken twice"))?;
        let mut out = Vec::new();
        {
            let stream = incoming
                .stream()
                .map_err(|_| Error::internal("body stream taken twice"))?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => out.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(e)) => {
                        let text = e.to_debug_string();
                        return Err(match wasip2::http::types::http_error_code(&e) {
                            Some(code) => error(url, code),
                            None if text.contains("BodySize") || text.contains("length limit") => {
                                Error::data(format!(
                                    "{url}: the response is larger than the grant's max_response_mb"
                                ))
                            }
                            None => Error::transient(format!("{url}: reading the body: {text}")),
                        });
                    }
                }
            }
        }
        let _ = IncomingBody::finish(incoming);
        Ok(Response {
            status,
            headers,
            body: out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split() {
        assert_eq!(
            split_url("https://api.x.com/v1/items?a=1").unwrap(),
            (true, "api.x.com", "/v1/items?a=1")
        );
        assert_eq!(
            split_url("http://127.0.0.1:8080").unwrap(),
            (false, "127.0.0.1:8080", "/")
        );
        assert_eq!(split_url("http://h?x=1").unwrap(), (false, "h", "?x=1"));
        assert!(split_url("ftp://x").is_err());
        assert!(split_url("http:///x").is_err());
    }
}
