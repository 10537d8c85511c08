//! `http`: outgoing requests through the standard `wasi:http` interfaces,
//! only to the hosts the job granted.
//!
//! Every request a plugin sends passes through [`Hooks::send_request`]
//! before it leaves the host: the authority must match the grant's `hosts`
//! (a redirect is a new request, so it is checked too), timeouts are capped
//! at the grant's, a response larger than the grant's cap is cut off with an
//! error, and `${secret:name}` in a header value is replaced by the secret
//! the job granted under that name. The plugin only ever holds the
//! placeholder, so a secret cannot leak through its logs or its state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;
use http_body_util::{BodyExt, Limited};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// What a job grants one plugin over HTTP.
#[derive(Debug, Clone)]
pub struct HttpGrant {
    /// Hosts requests may go to: `api.example.com`, `*.example.com` (any
    /// subdomain), `127.0.0.1:8080` (that port only).
    pub hosts: Vec<String>,
    /// Cap on connecting, on waiting for the first byte, and between bytes.
    pub timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: u64,
    /// Secrets a request header may name as `${secret:name}`.
    pub secrets: BTreeMap<String, Secret>,
}

impl Default for HttpGrant {
    fn default() -> Self {
        HttpGrant {
            hosts: Vec::new(),
            timeout: Duration::from_secs(30),
            max_response_bytes: 64 << 20,
            secrets: BTreeMap::new(),
        }
    }
}

/// A secret's value: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Whether `authority` (with `default_port` when it names none) is one of
/// `hosts`.
pub fn host_allowed(hosts: &[String], authority: &Authority, default_port: u16) -> bool {
    let host = authority
        .host()
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    let port = authority.port_u16().unwrap_or(default_port);
    hosts.iter().any(|pattern| {
        let pattern = pattern.trim().to_ascii_lowercase();
        let (name, wanted_port) = match pattern.rsplit_once(':') {
            Some((name, p)) if !name.ends_with(':') && p.parse::<u16>().is_ok() => {
                (name.to_string(), p.parse::<u16>().ok())
            }
            _ => (pattern.clone(), None),
        };
        let name = name.trim_matches(['[', ']']);
        let name_ok = match name.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => host == name,
        };
        name_ok && wanted_port.is_none_or(|p| p == port)
    })
}

/// Replace every `${secret:name}` in `value` with the granted secret.
///
/// # Errors
/// The name of a secret that is not granted.
pub fn inject_secrets(value: &str, secrets: &BTreeMap<String, Secret>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${secret:") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "${secret:".len()..];
        let end = after
            .find('}')
            .ok_or_else(|| "an unclosed `${secret:` in a header".to_string())?;
        let name = &after[..end];
        let secret = secrets.get(name).ok_or_else(|| name.to_string())?;
        out.push_str(&secret.0);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `wasi:http` hooks of one plugin instance.
pub(crate) struct Hooks {
    pub(crate) plugin: Arc<str>,
    pub(crate) grant: Option<Arc<HttpGrant>>,
}

fn cap(asked: Option<Duration>, limit: Duration) -> Option<Duration> {
    Some(asked.map_or(limit, |t| t.min(limit)))
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        let plugin = self.plugin.clone();
        let grant = self.grant.clone();
        Box::new(async move {
            let Some(grant) = grant else {
                tracing::warn!(%plugin, uri = %request.uri(), "HTTP is not granted to this plugin");
                return Err(HttpError::HttpRequestDenied);
            };
            let https = request.uri().scheme() == Some(&http::uri::Scheme::HTTPS);
            let allowed = request
                .uri()
                .authority()
                .is_some_and(|a| host_allowed(&grant.hosts, a, if https { 443 } else { 80 }));
            if !allowed {
                tracing::warn!(
                    %plugin,
                    host = request.uri().host().unwrap_or("?"),
                    "HTTP request refused: the host is not in the grant's hosts"
                );
                return Err(HttpError::HttpRequestDenied);
            }
            for value in request.headers_mut().values_mut() {
                let Ok(text) = value.to_str() else { continue };
                if !text.contains("${secret:") {
                    continue;
                }
                let injected = inject_secrets(text, &grant.secrets).map_err(|name| {
                    HttpError::InternalError(Some(format!(
                        "secret `{name}` is not granted to plugin {plugin}: add it to the plugin's grants.secrets"
                    )))
                })?;
                let mut secret = http::HeaderValue::from_str(&injected).map_err(|_| {
                    HttpError::InternalError(Some(
                        "a secret holds characters a header cannot".into(),
                    ))
                })?;
                secret.set_sensitive(true);
                *value = secret;
            }
            let asked = options.unwrap_or_default();
            let options = RequestOptions {
                connect_timeout: cap(asked.connect_timeout, grant.timeout),
                first_byte_timeout: cap(asked.first_byte_timeout, grant.timeout),
                between_bytes_timeout: cap(asked.between_bytes_timeout, grant.timeout),
            };
            tracing::debug!(%plugin, method = %request.method(), host = request.uri().host().unwrap_or("?"), "HTTP request");
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            let max = grant.max_response_bytes;
            let declared = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max) {
                return Err(HttpError::HttpResponseBodySize(declared));
            }
            let response = response.map(|body| {
                Limited::new(body, max as usize)
                    .map_err(|e| match e.downcast::<HttpError>() {
                        Ok(e) => *e,
                        Err(_) => HttpError::HttpResponseBodySize(None),
                    })
                    .boxed_unsync()
            });
            Ok((
                response,
                Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_names_wildcards_and_ports() {
        let hosts = vec![
            "api.example.com".to_string(),
            "*.data.example.org".to_string(),
            "127.0.0.1:8080".to_string(),
        ];
        let ok = |a: &str, port| host_allowed(&hosts, &a.parse().unwrap(), port);
        assert!(ok("api.example.com", 443));
        assert!(ok("API.example.com:8443", 443));
        assert!(!ok("evil.example.com", 443));
        assert!(!ok("api.example.com.evil.net", 443));
        assert!(ok("eu.data.example.org", 443));
        assert!(!ok("data.example.org", 443));
        assert!(ok("127.0.0.1:8080", 80));
        assert!(!ok("127.0.0.1:9090", 80));
        assert!(!ok("127.0.0.1", 80));
    }

    #[test]
    fn secrets_are_injected_by_name() {
        let secrets = [("token".to_string(), Secret("s3cr3t".into()))].into();
        assert_eq!(
            inject_secrets("Bearer ${secret:token}", &secrets).unwrap(),
            "Bearer s3cr3t"
        );
        assert_eq!(inject_secrets("none", &secrets).unwrap(), "none");
        assert_eq!(
            inject_secrets("${secret:other}", &secrets).unwrap_err(),
            "other"
        );
        assert!(format!("{:?}", secrets).contains("Secret(…)"));
    }
}
