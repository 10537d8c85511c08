//! Requests to BigQuery's REST API and its errors, classified the way the
//! pipeline acts on them: a missing dataset is the job's mistake, a refused
//! token an auth error, `rateLimitExceeded` or a 5xx transient, a row
//! BigQuery cannot take a data error.

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use sluice_codec::Error;
use sluice_gcs::google::{block_on, segment};

use crate::BigQuery;

/// Reasons BigQuery gives for failures that pass if tried again.
const TRANSIENT: [&str; 6] = [
    "backendError",
    "internalError",
    "rateLimitExceeded",
    "jobBackendError",
    "jobInternalError",
    "quotaExceeded",
];

impl BigQuery {
    /// `{endpoint}/bigquery/v2/projects/{project}/{rest}`.
    pub(crate) fn url(&self, rest: &str) -> String {
        format!(
            "{}/bigquery/v2/projects/{}/{rest}",
            self.client.base(),
            segment(&self.grant.project)
        )
    }

    /// `…/datasets/{dataset}` with `rest` after it.
    pub(crate) fn dataset_url(&self, dataset: &str, rest: &str) -> String {
        self.url(&format!("datasets/{}{rest}", segment(dataset)))
    }

    /// `…/datasets/{dataset}/tables/{table}`.
    pub(crate) fn table_url(&self, t: &crate::TableRef) -> String {
        self.dataset_url(&t.dataset, &format!("/tables/{}", segment(&t.table)))
    }

    /// Send a request with an optional JSON body, retrying what is worth
    /// retrying; the response as JSON, `None` for a 404 when `missing_ok`.
    pub(crate) fn call(
        &self,
        what: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
        missing_ok: bool,
    ) -> Result<Option<Value>, Error> {
        let text = body.map(|b| b.to_string());
        block_on(async {
            let response = self
                .client
                .send(what, || {
                    let request = self.client.http.request(method.clone(), url);
                    match &text {
                        Some(t) => request
                            .header(reqwest::header::CONTENT_TYPE, "application/json")
                            .body(t.clone()),
                        None => request,
                    }
                })
                .await?;
            if missing_ok && response.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            json(response, what).await.map(Some)
        })
    }
}

/// The body of a successful response as JSON (empty bodies are `null`),
/// or its error classified.
pub(crate) async fn json(response: Response, what: &str) -> Result<Value, Error> {
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| Error::transient(format!("{what}: the response broke off: {e}")))?;
    if !status.is_success() {
        return Err(classify(status, &String::from_utf8_lossy(&body), what));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&body)
        .map_err(|e| Error::internal(format!("{what}: BigQuery answered unreadable JSON: {e}")))
}

/// An error response (`{"error": {"message", "errors": [{"reason"}]}}`).
pub(crate) fn classify(status: StatusCode, body: &str, what: &str) -> Error {
    let parsed: Value = serde_json::from_str(body).unwrap_or_default();
    let message = parsed["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| body.chars().take(300).collect());
    let reason = parsed["error"]["errors"][0]["reason"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let said = match (reason.is_empty(), message.trim().is_empty()) {
        (_, true) => format!("HTTP {}", status.as_u16()),
        (true, false) => format!("{message} (HTTP {})", status.as_u16()),
        (false, false) => format!("{reason}: {message}"),
    };
    by_reason(&reason, status, format!("{what}: {said}"))
}

/// The kind of error a reason (or, without one, a status) means.
pub(crate) fn by_reason(reason: &str, status: StatusCode, message: String) -> Error {
    if TRANSIENT.contains(&reason) || sluice_gcs::google::retryable(status) {
        return Error::transient(message);
    }
    match (reason, status.as_u16()) {
        ("accessDenied" | "responseTooLarge", _) | (_, 401 | 403) => Error::auth(message),
        ("notFound", _) | (_, 404) => Error::config(message),
        ("invalid" | "invalidQuery" | "duplicate", _) | (_, 400 | 409) => Error::config(message),
        ("stopped", _) => Error::transient(message),
        _ => Error::internal(message),
    }
}

/// `errorResult` and `errors` of a finished job as one message: BigQuery's
/// words with the column or row each names, at most ten.
pub(crate) fn job_errors(status: &Value) -> Option<(String, String)> {
    let result = status.get("errorResult")?;
    let reason = result["reason"].as_str().unwrap_or("").to_string();
    let mut message = result["message"].as_str().unwrap_or("failed").to_string();
    let mut seen = vec![message.clone()];
    let errors = status["errors"].as_array().cloned().unwrap_or_default();
    for e in errors.iter().take(10) {
        let text = match (e["location"].as_str(), e["message"].as_str()) {
            (Some(at), Some(m)) if !m.contains(at) => format!("{m} (at {at})"),
            (_, Some(m)) => m.to_string(),
            _ => continue,
        };
        if !seen.contains(&text) {
            message.push_str("; ");
            message.push_str(&text);
            seen.push(text);
        }
    }
    if errors.len() > 10 {
        message.push_str(&format!("; and {} more", errors.len() - 10));
    }
    Some((reason, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_codec::ErrorKind;

    #[test]
    fn reasons_decide_the_kind() {
        let rate =
            r#"{"error": {"message": "slow down", "errors": [{"reason": "rateLimitExceeded"}]}}"#;
        assert_eq!(
            classify(StatusCode::FORBIDDEN, rate, "x").kind,
            ErrorKind::Transient
        );
        let denied = r#"{"error": {"message": "no", "errors": [{"reason": "accessDenied"}]}}"#;
        let e = classify(StatusCode::FORBIDDEN, denied, "x");
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(e.message.contains("accessDenied: no"), "{}", e.message);
        assert_eq!(
            classify(StatusCode::NOT_FOUND, "", "x").kind,
            ErrorKind::Config
        );
        assert_eq!(
            classify(StatusCode::BAD_GATEWAY, "", "x").kind,
            ErrorKind::Transient
        );
    }

    #[test]
    fn job_errors_name_what_failed() {
        let status = serde_json::json!({
            "state": "DONE",
            "errorResult": {"reason": "invalid", "message": "Error while reading data"},
            "errors": [
                {"reason": "invalid", "message": "Error while reading data"},
                {"reason": "invalid", "location": "amount", "message": "Could not parse 'x' as INT64"}
            ]
        });
        let (reason, message) = job_errors(&status).unwrap();
        assert_eq!(reason, "invalid");
        assert_eq!(
            message,
            "Error while reading data; Could not parse 'x' as INT64 (at amount)"
        );
        assert!(job_errors(&serde_json::json!({"state": "DONE"})).is_none());
    }
}
