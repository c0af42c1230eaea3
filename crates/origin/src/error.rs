//! Request errors: each maps to a status, a short JSON body and who was at fault.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The URL is malformed or tries to leave the storage root.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The request is understood but not allowed (e.g. an encryption the policy does not offer).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No such asset, track or segment.
    #[error("not found: {0}")]
    NotFound(String),
    /// The asset's files cannot be packaged (malformed, truncated, unsupported).
    #[error("asset '{asset}': {detail}")]
    Content {
        /// Asset path.
        asset: String,
        /// The fault.
        detail: String,
    },
    /// Storage is unreachable (refused or dropped connections): 503 with `Retry-After`.
    #[error("storage: {0}")]
    Storage(String),
    /// The origin is holding back from a failing or saturated store (circuit open, too many
    /// requests in flight): 503 with `Retry-After` of `retry_after` seconds.
    #[error("storage: {detail}")]
    StorageBusy {
        /// What was refused.
        detail: String,
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// A source file changed in storage since it was indexed (its index and asset were
    /// dropped): 503 with `Retry-After`, unless the one retry against the fresh index works.
    #[error("source changed: {0}")]
    SourceChanged(String),
    /// Storage did not answer in time: 504.
    #[error("storage timeout: {0}")]
    StorageTimeout(String),
    /// Storage answered with an error: 502.
    #[error("storage error: {0}")]
    StorageUpstream(String),
}

impl ApiError {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Content { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Storage(_) | ApiError::StorageBusy { .. } | ApiError::SourceChanged(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::StorageTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::StorageUpstream(_) => StatusCode::BAD_GATEWAY,
        }
    }
    /// Short machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Content { .. } => "bad_content",
            ApiError::Storage(_) => "storage_unavailable",
            ApiError::SourceChanged(_) => "source_changed",
            ApiError::StorageBusy { .. } => "storage_busy",
            ApiError::StorageTimeout(_) => "storage_timeout",
            ApiError::StorageUpstream(_) => "storage_error",
        }
    }
}

impl From<sealcast_storage::Error> for ApiError {
    fn from(e: sealcast_storage::Error) -> Self {
        match e {
            sealcast_storage::Error::NotFound(p) => ApiError::NotFound(p),
            sealcast_storage::Error::Timeout(m) => ApiError::StorageTimeout(m),
            sealcast_storage::Error::Changed(p) => ApiError::SourceChanged(p),
            sealcast_storage::Error::Upstream(m) => ApiError::StorageUpstream(m),
            sealcast_storage::Error::Overloaded { detail, retry_after_secs } => ApiError::StorageBusy { detail, retry_after: retry_after_secs },
            other => ApiError::Storage(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Storage faults name endpoints, buckets and object keys: those stay in the log (see
        // `server::refused`); the public body says only what kind of fault it was.
        let message = match &self {
            ApiError::Storage(_) => "storage is unavailable".to_string(),
            ApiError::StorageBusy { .. } => "storage is busy".to_string(),
            ApiError::StorageTimeout(_) => "storage did not answer in time".to_string(),
            ApiError::StorageUpstream(_) => "storage answered with an error".to_string(),
            other => other.to_string(),
        };
        let mut body = serde_json::json!({ "error": self.kind(), "message": message });
        if let ApiError::Content { asset, detail } = &self {
            body["asset"] = asset.clone().into();
            body["fault"] = detail.clone().into();
        }
        let mut r = (self.status(), body.to_string()).into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            ApiError::Storage(_) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            }
            ApiError::SourceChanged(_) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::StorageBusy { retry_after, .. } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn storage_details_stay_out_of_public_bodies() {
        let detail = "GET http://10.0.0.7:9000/media-bucket/vod/movie/video.cmfv: 500 Internal Server Error";
        for e in [
            ApiError::Storage(detail.into()),
            ApiError::StorageTimeout(detail.into()),
            ApiError::StorageUpstream(detail.into()),
            ApiError::StorageBusy { detail: detail.into(), retry_after: 1 },
        ] {
            let status = e.status();
            let body = axum::body::to_bytes(e.into_response().into_body(), 4096).await.unwrap();
            let text = String::from_utf8_lossy(&body);
            assert!(!text.contains("10.0.0.7") && !text.contains("bucket") && !text.contains("video.cmfv"), "{status}: {text}");
        }
    }
}
