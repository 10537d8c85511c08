//! S3 failures, classified the way the pipeline acts on them: a missing
//! bucket is the job's mistake, refused credentials are an auth error, an
//! unreachable endpoint or a 5xx is worth retrying.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use sluice_codec::Error;

/// Whether a HEAD or GET failed only because the key does not exist.
pub(crate) fn is_not_found<E: ProvideErrorMetadata, R: HasStatus>(err: &SdkError<E, R>) -> bool {
    matches!(err.code(), Some("NotFound" | "NoSuchKey"))
        || err.raw_response().map(HasStatus::status) == Some(404)
            && !matches!(err.code(), Some("NoSuchBucket"))
}

/// Whether a multipart call failed because the upload is gone (completed
/// or aborted already).
pub(crate) fn is_no_such_upload<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(err.code(), Some("NoSuchUpload"))
}

/// The HTTP status of a raw response.
pub(crate) trait HasStatus {
    fn status(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

/// An SDK error on `what` (a bucket, prefix or `s3://bucket/key`) as a
/// codec error of the right kind, with the service's own words.
pub(crate) fn classify<E, R>(err: SdkError<E, R>, what: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: HasStatus + std::fmt::Debug,
{
    let detail = || DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            return Error::transient(format!("{what}: cannot reach S3: {}", detail()));
        }
        SdkError::ConstructionFailure(_) => {
            let text = detail();
            return if text.contains("credentials") {
                Error::auth(format!(
                    "{what}: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                     a profile, or run with a task role ({text})"
                ))
            } else {
                Error::config(format!("{what}: {text}"))
            };
        }
        _ => {}
    }
    let status = err.raw_response().map(HasStatus::status).unwrap_or(0);
    let code = err.code().unwrap_or("").to_string();
    let message = err.message().unwrap_or("").to_string();
    let said = match (code.is_empty(), message.is_empty()) {
        (true, _) => format!("HTTP {status}"),
        (false, true) => format!("{code}, HTTP {status}"),
        (false, false) => format!("{code}: {message}"),
    };
    match code.as_str() {
        "NoSuchBucket" => Error::config(format!("{what}: the bucket does not exist ({said})")),
        "NoSuchKey" | "NotFound" => Error::config(format!("{what}: no such object")),
        "AccessDenied"
        | "AllAccessDisabled"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "InvalidToken"
        | "TokenRefreshRequired" => Error::auth(format!(
            "{what}: S3 refused the credentials or permissions ({said})"
        )),
        "SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout" => {
            Error::transient(format!("{what}: {said}"))
        }
        _ if status >= 500 || status == 429 => Error::transient(format!("{what}: {said}")),
        _ if status == 403 => Error::auth(format!("{what}: access denied ({said})")),
        _ if status == 404 => Error::config(format!("{what}: not found ({said})")),
        _ => Error::internal(format!("{what}: {}", detail())),
    }
}
