//! The JSON API client: credentials from `google-cloud-auth`, requests with
//! retries on what is worth retrying, and GCS's errors classified the way
//! the pipeline acts on them (a missing bucket is the job's mistake, a
//! refused token an auth error, a 429 or 5xx transient).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use google_cloud_auth::credentials::{self, CacheableResource, Credentials};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use sluice_codec::Error;

/// Google's endpoint when none is given.
const GOOGLE: &str = "https://storage.googleapis.com";
/// Tries of one request when the failure is worth retrying.
const ATTEMPTS: u32 = 5;

/// How to reach GCS: the endpoint and whose credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GcsSettings {
    /// A GCS-compatible endpoint (`http://127.0.0.1:4443`, an emulator);
    /// by default Google's.
    pub endpoint: Option<String>,
    /// Whose credentials requests carry.
    pub credentials: GcsCredentials,
}

impl GcsSettings {
    /// Settings from the environment alone (what task logs and plugin
    /// registries use): `STORAGE_EMULATOR_HOST`, the variable Google's
    /// client libraries read, names an emulator reached without
    /// credentials; otherwise Application Default Credentials.
    pub fn from_env() -> GcsSettings {
        match emulator_endpoint("STORAGE_EMULATOR_HOST") {
            Some(endpoint) => GcsSettings {
                endpoint: Some(endpoint),
                credentials: GcsCredentials::Anonymous,
            },
            None => GcsSettings::default(),
        }
    }
}

/// The emulator an environment variable names the way Google's client
/// libraries read it (`STORAGE_EMULATOR_HOST`, `BIGQUERY_EMULATOR_HOST`):
/// `host:port`, or a URL.
pub fn emulator_endpoint(variable: &str) -> Option<String> {
    let host = std::env::var(variable).ok().filter(|h| !h.is_empty())?;
    Some(if host.contains("://") {
        host
    } else {
        format!("http://{host}")
    })
}

/// Whose credentials requests carry.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub enum GcsCredentials {
    /// Application Default Credentials, in Google's order:
    /// `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's well-known file, then the
    /// metadata server.
    #[default]
    ApplicationDefault,
    /// No credentials (an emulator, a public bucket).
    Anonymous,
    /// A credentials file's contents: a service-account key, an
    /// `external_account` config (workload identity federation, e.g. from
    /// an AWS role) or an `authorized_user` file.
    Json(String),
}

impl std::fmt::Debug for GcsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GcsCredentials::ApplicationDefault => f.write_str("ApplicationDefault"),
            GcsCredentials::Anonymous => f.write_str("Anonymous"),
            GcsCredentials::Json(_) => f.write_str("Json(…)"),
        }
    }
}

impl GcsCredentials {
    /// Google's credentials for these.
    ///
    /// # Errors
    /// A config error naming what is wrong with the JSON (never its
    /// content: it holds a private key).
    pub fn build(&self) -> Result<Credentials, Error> {
        // google-cloud-auth signs and connects with rustls' process-wide
        // provider; the workspace's is ring. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Some builders start their token cache's refresh task at once:
        // they need a runtime, and a plugin's thread has none.
        let _runtime = crate::runtime().enter();
        let built = match self {
            GcsCredentials::Anonymous => return Ok(credentials::anonymous::Builder::new().build()),
            GcsCredentials::ApplicationDefault => credentials::Builder::default().build(),
            GcsCredentials::Json(text) => {
                let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                    Error::config(format!(
                        "GCS credentials are not JSON (give a credentials file's contents): {e}"
                    ))
                })?;
                match json["type"].as_str() {
                    Some("service_account") => {
                        credentials::service_account::Builder::new(json).build()
                    }
                    Some("external_account") => {
                        credentials::external_account::Builder::new(json).build()
                    }
                    Some("authorized_user") => {
                        credentials::user_account::Builder::new(json).build()
                    }
                    other => {
                        return Err(Error::config(format!(
                            "GCS credentials of type {}: use a service-account key \
                             (\"service_account\"), a workload identity federation config \
                             (\"external_account\") or an \"authorized_user\" file",
                            other.map_or("(none)".to_string(), |t| format!("`{t}`"))
                        )));
                    }
                }
            }
        };
        built.map_err(|e| Error::config(format!("GCS credentials: {e}")))
    }
}

/// The HTTP client and credentials for one endpoint.
#[derive(Clone)]
pub struct Client {
    /// The connection pool requests go through.
    pub http: reqwest::Client,
    base: String,
    credentials: Credentials,
}

/// One client per distinct settings, shared by every grant in the process
/// (connections and tokens are cached in it).
///
/// # Errors
/// A config error for unusable credentials.
pub fn shared(settings: &GcsSettings) -> Result<Client, Error> {
    static CLIENTS: OnceLock<Mutex<HashMap<GcsSettings, Client>>> = OnceLock::new();
    let clients = CLIENTS.get_or_init(Default::default);
    let mut clients = clients.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = clients.get(settings) {
        return Ok(c.clone());
    }
    let http = reqwest::Client::builder()
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| Error::internal(format!("GCS: cannot build an HTTP client: {e}")))?;
    let base = settings
        .endpoint
        .as_deref()
        .unwrap_or(GOOGLE)
        .trim_end_matches('/')
        .to_string();
    let client = Client {
        http,
        base,
        credentials: settings.credentials.build()?,
    };
    clients.insert(settings.clone(), client.clone());
    Ok(client)
}

/// An object name or bucket as one URL path segment.
pub fn segment(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

impl Client {
    /// The endpoint, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether requests go to Google itself rather than an emulator.
    pub fn is_google(&self) -> bool {
        self.base.ends_with(".googleapis.com")
    }

    /// `{base}/storage/v1/b/{bucket}/{rest}`.
    pub(crate) fn bucket_url(&self, bucket: &str, rest: &str) -> String {
        format!("{}/storage/v1/b/{}/{rest}", self.base, segment(bucket))
    }

    /// The metadata URL of an object.
    pub(crate) fn object_url(&self, bucket: &str, name: &str) -> String {
        self.bucket_url(bucket, &format!("o/{}", segment(name)))
    }

    /// The media upload URL of a bucket.
    pub(crate) fn upload_url(&self, bucket: &str) -> String {
        format!("{}/upload/storage/v1/b/{}/o", self.base, segment(bucket))
    }

    /// The endpoint the resumable session `location` should be reached on:
    /// an emulator can answer with its public name rather than the address
    /// it was reached on, so the session's path is kept and the origin is
    /// ours.
    pub fn session_url(&self, location: &str) -> String {
        if self.is_google() {
            return location.to_string();
        }
        let path = location
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|slash| &rest[slash..]))
            .unwrap_or(location);
        format!("{}{path}", self.base)
    }

    /// The authorization headers for one request.
    async fn auth(&self, what: &str) -> Result<http::HeaderMap, Error> {
        match self.credentials.headers(http::Extensions::new()).await {
            Ok(CacheableResource::New { data, .. }) => Ok(data),
            Ok(CacheableResource::NotModified) => Ok(http::HeaderMap::new()),
            Err(e) if e.is_transient() => Err(Error::transient(format!(
                "{what}: cannot get a Google access token: {e}"
            ))),
            Err(e) => Err(Error::auth(format!(
                "{what}: no usable Google credentials: {e} (set GOOGLE_APPLICATION_CREDENTIALS, \
                 give `gcs.credentials`, or run where a metadata server answers)"
            ))),
        }
    }

    /// Send the request `make` builds, with credentials, retrying dropped
    /// connections, 408, 429 and 5xx with backoff. The response may still
    /// be an error status for the caller to read.
    ///
    /// # Errors
    /// Transient after the last try, or an auth error for credentials.
    pub async fn send(
        &self,
        what: &str,
        make: impl Fn() -> RequestBuilder,
    ) -> Result<Response, Error> {
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=ATTEMPTS {
            let headers = self.auth(what).await?;
            let last = attempt == ATTEMPTS;
            match make().headers(headers).send().await {
                Ok(response) if !retryable(response.status()) || last => return Ok(response),
                Ok(response) => {
                    tracing::debug!(what, status = %response.status(), attempt, "retrying");
                }
                Err(e) if last => {
                    return Err(Error::transient(format!(
                        "{what}: cannot reach {}: {e}",
                        self.base
                    )));
                }
                Err(e) => tracing::debug!(what, error = %e, attempt, "retrying"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        unreachable!("the last attempt returns")
    }
}

/// Whether a status is worth another try.
pub fn retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// The body of a successful response as `T`, or the error it carries.
pub(crate) async fn json<T: DeserializeOwned>(response: Response, what: &str) -> Result<T, Error> {
    let response = ok(response, what).await?;
    let body = response
        .bytes()
        .await
        .map_err(|e| Error::transient(format!("{what}: the response broke off: {e}")))?;
    serde_json::from_slice(&body)
        .map_err(|e| Error::internal(format!("{what}: GCS answered unreadable JSON: {e}")))
}

/// The response when its status is a success, else its error classified.
pub(crate) async fn ok(response: Response, what: &str) -> Result<Response, Error> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    Err(classify(status, &body, what))
}

/// A GCS error response as a codec error of the right kind, with the
/// service's own words (`{"error": {"message": …, "errors": [{"reason"}]}}`).
pub(crate) fn classify(status: StatusCode, body: &str, what: &str) -> Error {
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let message = parsed["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| body.chars().take(300).collect::<String>());
    let reason = parsed["error"]["errors"][0]["reason"]
        .as_str()
        .unwrap_or("");
    let said = match (reason.is_empty(), message.trim().is_empty()) {
        (_, true) => format!("HTTP {}", status.as_u16()),
        (true, false) => format!("{message} (HTTP {})", status.as_u16()),
        (false, false) => format!("{reason}: {message}"),
    };
    match status.as_u16() {
        401 | 403 => Error::auth(format!(
            "{what}: GCS refused the credentials or permissions ({said})"
        )),
        404 => Error::config(format!("{what}: not found ({said})")),
        412 => Error::data(format!("{what}: the object changed meanwhile ({said})")),
        400 | 405 | 409 | 411 | 413 => Error::config(format!("{what}: {said}")),
        s if retryable(StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY)) => {
            Error::transient(format!("{what}: {said}"))
        }
        _ => Error::internal(format!("{what}: {said}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified() {
        let body = r#"{"error": {"code": 403, "message": "no access", "errors": [{"reason": "forbidden"}]}}"#;
        let e = classify(StatusCode::FORBIDDEN, body, "gs://b/x");
        assert_eq!(e.kind, sluice_codec::ErrorKind::Auth);
        assert!(e.message.contains("forbidden: no access"), "{}", e.message);
        let e = classify(StatusCode::SERVICE_UNAVAILABLE, "", "gs://b/x");
        assert_eq!(e.kind, sluice_codec::ErrorKind::Transient);
        let e = classify(StatusCode::NOT_FOUND, "Not Found", "gs://b/x");
        assert_eq!(e.kind, sluice_codec::ErrorKind::Config);
    }

    #[test]
    fn credentials_json_is_checked_without_echoing_it() {
        let bad = GcsCredentials::Json("{\"private_key\": \"SECRET\"}".into());
        let e = bad.build().unwrap_err();
        assert!(e.message.contains("of type (none)"), "{}", e.message);
        assert!(!e.message.contains("SECRET"));
        let not_json = GcsCredentials::Json("SECRET".into());
        assert!(!not_json.build().unwrap_err().message.contains("SECRET"));
        assert_eq!(format!("{bad:?}"), "Json(…)");
    }

    #[test]
    fn external_account_configs_from_aws_parse() {
        // Workload identity federation from AWS, as `gcloud iam
        // workload-identity-pools create-cred-config --aws` writes it.
        let config = serde_json::json!({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/aws",
            "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
            "token_url": "https://sts.googleapis.com/v1/token",
            "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken",
            "credential_source": {
                "environment_id": "aws1",
                "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
                "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
                "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
            }
        });
        GcsCredentials::Json(config.to_string()).build().unwrap();
        let mut broken = config.clone();
        broken["credential_source"] = serde_json::json!({});
        assert!(GcsCredentials::Json(broken.to_string()).build().is_err());
    }

    #[test]
    fn emulator_sessions_keep_our_origin() {
        let client = shared(&GcsSettings {
            endpoint: Some("http://127.0.0.1:5058/".into()),
            credentials: GcsCredentials::Anonymous,
        })
        .unwrap();
        assert_eq!(
            client.session_url("http://127.0.0.1/upload/storage/v1/b/x/o?upload_id=1"),
            "http://127.0.0.1:5058/upload/storage/v1/b/x/o?upload_id=1"
        );
    }
}
