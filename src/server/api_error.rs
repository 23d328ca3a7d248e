//! The error answers of the HTTP API. Each handler's failure is an [`ApiError`], whose status,
//! `Retry-After` and JSON body (`{"error": "…"}`, [`ErrorBody`]) it decides in one place; and
//! [`json_errors`] turns the plain-text rejections of the framework (an unknown route, a body
//! over the limit, a malformed query, a request that is not a WebSocket upgrade) into the same
//! body, so that every error the API answers is JSON.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{journal, sink};

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, and what to do about it.
    pub error: String,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The `/v1` endpoints require a bearer token that the request did not give.
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// The idempotency key is empty, too long or not visible ASCII.
    #[error("the {header} header must be 1 to {max} bytes of visible ASCII")]
    BadIdempotencyKey {
        /// The header's name.
        header: &'static str,
        /// The most bytes it may have.
        max: usize,
    },
    /// An ingest body that starts as a JSON array but is not one.
    #[error("the body is not a JSON array of objects: {0}")]
    NotAnArray(#[source] serde_json::Error),
    /// A subscription asked for a customer and a segment at once.
    #[error("subscribe to a customer or a segment, not both")]
    CustomerAndSegment,
    /// No profile has the customer (or device) id.
    #[error("no customer {0:?}")]
    NoCustomer(String),
    /// Nobody to erase: no customer or device has the id.
    #[error("no customer or device {0:?}")]
    NoPerson(String),
    /// No segment of that name.
    #[error("no segment {0:?}")]
    NoSegment(String),
    /// The engine's queue is full.
    #[error("the engine is behind; retry later")]
    Busy,
    /// The service is stopping and takes no more requests.
    #[error("the service is shutting down")]
    ShuttingDown,
    /// `max-subscribers` subscriptions are open.
    #[error("too many subscribers (max-subscribers = {0})")]
    TooManySubscribers(usize),
    /// The durable log refused an ingest request's records: nothing of it was applied.
    #[error("the durable log cannot take the request, so nothing of it was applied; retry later: {0}")]
    NotLogged(#[source] Arc<journal::Error>),
    /// The service stopped before an ingest request was logged.
    #[error("the service stopped before the request was logged")]
    StoppedBeforeLogged,
    /// An erasure was applied to the views but the durable log could not record it.
    #[error(
        "erased from every view, but the durable log could not record it (a restart would bring the person back; \
         retry): {0}"
    )]
    ErasureNotLogged(#[source] journal::Error),
    /// The engine stopped before an erasure was applied.
    #[error("the engine stopped before the erasure was applied")]
    StoppedBeforeErasure,
    /// A fault of the service itself: a row of its tables could not be written as JSON.
    #[error("internal error: {0}")]
    Internal(#[from] sink::Error),
}

impl ApiError {
    /// The answer's status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadIdempotencyKey { .. } | ApiError::NotAnArray(_) | ApiError::CustomerAndSegment => {
                StatusCode::BAD_REQUEST
            }
            ApiError::NoCustomer(_) | ApiError::NoPerson(_) | ApiError::NoSegment(_) => StatusCode::NOT_FOUND,
            ApiError::Busy => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ShuttingDown
            | ApiError::TooManySubscribers(_)
            | ApiError::NotLogged(_)
            | ApiError::StoppedBeforeLogged
            | ApiError::ErasureNotLogged(_)
            | ApiError::StoppedBeforeErasure => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the client should retry after a second (a full queue, a log that refused).
    fn retry_soon(&self) -> bool {
        matches!(self, ApiError::Busy | ApiError::NotLogged(_))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), axum::Json(ErrorBody { error: self.to_string() })).into_response();
        if self.retry_soon() {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The most of a framework rejection's text kept in its JSON body.
const MAX_REJECTION_BYTES: usize = 4096;

/// Makes an error answer that is not JSON (a rejection of the framework, which answers in plain
/// text or with an empty body) JSON, keeping its status, headers and text.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match to_bytes(body, MAX_REJECTION_BYTES).await {
        Ok(bytes) if !bytes.trim_ascii().is_empty() => String::from_utf8_lossy(bytes.trim_ascii()).into_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let body = serde_json::to_vec(&ErrorBody { error: text }).expect("an error body serializes");
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON body of `response`.
    async fn body(response: Response) -> serde_json::Value {
        serde_json::from_slice(&to_bytes(response.into_body(), usize::MAX).await.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn rejections_of_the_framework_become_json_errors() {
        let plain = (StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded").into_response();
        let json = json_errors(plain).await;
        assert_eq!(json.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(body(json).await, serde_json::json!({ "error": "length limit exceeded" }));
        let empty = json_errors(StatusCode::NOT_FOUND.into_response()).await;
        assert_eq!(body(empty).await, serde_json::json!({ "error": "not found" }));
        let fine = json_errors((StatusCode::OK, "ok\n").into_response()).await;
        assert_eq!(to_bytes(fine.into_body(), usize::MAX).await.unwrap(), "ok\n");
    }

    #[tokio::test]
    async fn errors_answer_their_status_retry_and_text() {
        let busy = ApiError::Busy.into_response();
        assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        let missing = ApiError::NoSegment("vip".into()).into_response();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert!(!missing.headers().contains_key(header::RETRY_AFTER));
        assert_eq!(body(missing).await, serde_json::json!({ "error": "no segment \"vip\"" }));
    }
}
