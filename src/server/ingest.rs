//! `POST /v1/events`: decodes a JSON array or NDJSON body with the pipeline's field mapping
//! and queues its events for the engine, answering, once they are in the durable log, how many
//! were accepted and why the others were rejected. An `Idempotency-Key` header makes a retry
//! of a request whose answer was lost safe.

use std::str::Utf8Error;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::value::RawValue;
use stepstone_dataflows::symbols::Interner;
use utoipa::ToSchema;

use tokio::sync::oneshot;

use super::api_error::{ApiError, ErrorBody};
use super::live::{Live, Refused};
use super::submission::{Ack, Submission};
use crate::source::Rejection;
use crate::source::lateness::{Arrival, SourceClock};
use crate::source::{Input, to_input};

/// How rejections of ingested records name their source.
const SOURCE: &str = "POST /v1/events";

/// The answer to an ingest request.
#[derive(Debug, Serialize, ToSchema)]
pub struct Answer {
    /// Set when no record of the request was accepted (the answer is then a 400).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Records accepted: events queued for the engine, links, and records without consent.
    accepted: usize,
    /// Accepted records without analytics consent, which count in no view.
    #[serde(skip_serializing_if = "is_zero")]
    without_consent: u64,
    /// Whether the request repeats an idempotency key acknowledged before: `accepted` is the
    /// first answer's, and nothing was applied again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
    /// The records that were not, with why.
    rejected: Vec<Rejected>,
}

/// One rejected record of a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rejected {
    /// Its position in the request (0-based; for NDJSON, among the non-blank lines).
    index: usize,
    /// The field at fault, if one.
    field: Option<String>,
    /// The reason's kind (`bad_time`, `missing_field`, …).
    kind: &'static str,
    /// Why.
    reason: String,
}

/// A decoded record of a request: its event time and input, or why it was rejected.
type DecodedRecord = Result<(i64, Input), Rejection>;

/// The request header whose value makes a retried request safe: a request repeating the key
/// of one acknowledged before is answered as before and not applied again.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The longest idempotency key accepted.
const MAX_KEY_BYTES: usize = 256;

/// Handles `POST /v1/events`: answers once the accepted records are in the durable log.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "ingest",
    params(("idempotency-key" = Option<String>, Header, description = "Makes a retry safe: a request repeating the \
        key of one acknowledged before is answered as before and not applied again (1 to 256 bytes)")),
    request_body(
        content = Vec<Object>,
        content_type = "application/json",
        description = "A JSON array of records, or NDJSON (one record per line), in the pipeline's column mapping"
    ),
    responses(
        (status = 200, description = "The records are in the durable log; the rejected ones and why", body = Answer),
        (status = 400, description = "The body is not records, the key is malformed, or no record was accepted \
            (then with the fields of an answer)", body = ErrorBody),
        (status = 413, description = "The body is over max-body-bytes", body = ErrorBody),
        (status = 429, description = "The engine is behind; retry after Retry-After", body = ErrorBody),
        (status = 503, description = "The log refused the request, or the service is stopping", body = ErrorBody),
        (status = "default", description = "An error", body = ErrorBody),
    )
)]
pub async fn ingest(State(live): State<Arc<Live>>, headers: HeaderMap, body: Bytes) -> Response {
    let key = match headers.get(IDEMPOTENCY_HEADER).map(|value| value.to_str()) {
        None => None,
        Some(Ok(key)) if !key.is_empty() && key.len() <= MAX_KEY_BYTES => Some(key.to_owned()),
        Some(_) => {
            return ApiError::BadIdempotencyKey { header: IDEMPOTENCY_HEADER, max: MAX_KEY_BYTES }.into_response();
        }
    };
    let Queued { answer, acked, moved } = match queue(&live, key, &body) {
        Ok(queued) => queued,
        Err(error) => return error.into_response(),
    };
    let refused = answer.accepted == 0 && !answer.rejected.is_empty();
    let status = if refused { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let answer = Answer { error: refused.then(|| "no record of the request was accepted".to_owned()), ..answer };
    match acked {
        None => {}
        Some(acked) => match acked.await {
            Ok(Ack::Logged) => {}
            Ok(Ack::Duplicate(answered)) => {
                let answer = Answer {
                    error: None,
                    accepted: answered as usize,
                    without_consent: 0,
                    duplicate: true,
                    rejected: Vec::new(),
                };
                return (StatusCode::OK, axum::Json(answer)).into_response();
            }
            Ok(Ack::NotLogged(reason)) => {
                moved.undo(&live);
                return ApiError::NotLogged(reason).into_response();
            }
            Err(_) => return ApiError::StoppedBeforeLogged.into_response(),
        },
    }
    (status, axum::Json(answer)).into_response()
}

/// A request decoded and queued for the engine.
struct Queued {
    /// Its answer, once the driver acknowledges it.
    answer: Answer,
    /// Where the driver acknowledges it (none when nothing was queued).
    acked: Option<oneshot::Receiver<Ack>>,
    /// How it moved the ingest clock.
    moved: ClockMove,
}

/// How a queued request moved the ingest clock: the clock before it and after it.
struct ClockMove {
    before: SourceClock,
    after: SourceClock,
}

impl ClockMove {
    /// Moves the ingest clock back to where it was before a request that the log refused, so
    /// that nothing of the request stays applied (its retry is not late because of its own
    /// events). Only while no event was admitted since: those were admitted by the clock as it
    /// is, and the engine may have settled its history on that.
    fn undo(&self, live: &Live) {
        let mut clock = live.http_clock.lock().expect("ingest clock lock");
        if *clock == self.after {
            *clock = self.before;
        }
    }
}

/// Decodes the records of `body` and queues them for the engine; an error answer when the body
/// is not records or the queue does not take them.
fn queue(live: &Live, key: Option<String>, body: &[u8]) -> Result<Queued, ApiError> {
    let texts = records(body)?;
    let mut interner = Interner::new(live.symbols.clone());
    let decoded: Vec<(usize, DecodedRecord)> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let decoded = match text {
                Ok(text) => live.records.decode(text, index as u64 + 1, |record| {
                    Ok((record.time, to_input(&record, 0, &mut interner, live.keep_sessions)))
                }),
                Err(error) => Err(Rejection::malformed(SOURCE, index as u64 + 1, format!("invalid UTF-8: {error}"))),
            };
            (index, decoded)
        })
        .collect();

    // The source's watermark decides which events are late, in the order the requests take
    // the clock; it moves only if the batch is queued (and back if the log refuses it).
    let mut clock = live.http_clock.lock().expect("ingest clock lock");
    let mut tentative = *clock;
    let mut batch = Submission::default();
    let mut accepted = 0;
    let mut rejected = Vec::new();
    for (index, decoded) in decoded {
        let admitted = decoded.and_then(|(time, input)| match tentative.admit(time) {
            Ok(arrival) => {
                batch.late_accepted += u64::from(arrival == Arrival::LateAccepted);
                Ok(input)
            }
            Err(fault) => {
                let raw = texts[index].as_deref().unwrap_or_default().to_owned();
                Err(Rejection::from_fault(SOURCE, index as u64 + 1, fault, raw))
            }
        });
        match admitted {
            Ok(Input { event, link, withheld }) => {
                accepted += 1;
                batch.events.extend(event);
                batch.links.extend(link);
                batch.withheld += u64::from(withheld);
            }
            Err(rejection) => {
                rejected.push(Rejected {
                    index,
                    field: rejection.field.clone(),
                    kind: rejection.reason_kind(),
                    reason: rejection.reason.clone(),
                });
                batch.rejections.push(rejection);
            }
        }
    }
    batch.watermark = tentative.watermark();
    batch.clock_latest = tentative.latest();
    batch.accepted = accepted as u64;
    let answer = Answer { error: None, accepted, without_consent: batch.withheld, duplicate: false, rejected };
    if accepted == 0 && batch.rejections.is_empty() && key.is_none() {
        return Ok(Queued { answer, acked: None, moved: ClockMove { before: *clock, after: *clock } });
    }
    batch.key = key;
    let (ack, acked) = oneshot::channel();
    batch.ack = Some(ack);
    match live.submit(batch) {
        Ok(()) => {
            let moved = ClockMove { before: *clock, after: tentative };
            *clock = tentative;
            Ok(Queued { answer, acked: Some(acked), moved })
        }
        Err(Refused::Busy) => Err(ApiError::Busy),
        Err(Refused::Closed) => Err(ApiError::ShuttingDown),
    }
}

/// Whether a count is zero (left out of answers).
fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// The records of a body: the elements of a JSON array, or the non-blank lines of NDJSON (a
/// line that is not UTF-8 is a rejection of its own); an error when the body starts as an array
/// but is not one.
fn records(body: &[u8]) -> Result<Vec<Result<&str, Utf8Error>>, ApiError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.trim_ascii_start().starts_with(b"[") {
        let elements: Vec<&RawValue> = serde_json::from_slice(body).map_err(ApiError::NotAnArray)?;
        return Ok(elements.into_iter().map(|element| Ok(element.get())).collect());
    }
    Ok(body
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|line| !line.is_empty())
        .map(std::str::from_utf8)
        .collect())
}
