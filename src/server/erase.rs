//! `DELETE /v1/customers/{id}`: erases a person. The request joins the ingest queue, so every
//! event accepted before it is erased too; it is answered once no view holds the person.

use std::sync::Arc;

use anyhow::Context;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::api_error::{ApiError, ErrorBody};
use super::live::{Live, Refused};
use super::submission::{EraseRequest, Submission};

/// The answer of an erasure.
#[derive(Debug, Serialize, ToSchema)]
pub struct Erased {
    /// The id asked for.
    erased: String,
    /// The logical time at which the person left every view.
    time: u64,
    /// The identities erased (the id and every id linked to it).
    identities: usize,
    /// The events erased.
    events: u64,
    /// The links erased.
    links: usize,
}

/// The request header that names who asks for an erasure, for the erasure log.
pub const ACTOR_HEADER: &str = "stepstone-actor";

/// Handles `DELETE /v1/customers/{id}`: the customer id (or else device id) `id` and every
/// identity linked to it lose all their events and links in every view, and their later
/// events are dropped. Answers what was erased, or 404 when no view knows `id`.
#[utoipa::path(
    delete,
    path = "/v1/customers/{id}",
    tag = "erasure",
    params(
        ("id" = String, Path, description = "A customer id (or else device id) of the person"),
        ("stepstone-actor" = Option<String>, Header, description = "Who asks, for the erasure log"),
    ),
    responses(
        (status = 200, description = "What was erased", body = Erased),
        (status = 404, description = "No customer or device has the id", body = ErrorBody),
        (status = 429, description = "The engine is behind; retry after Retry-After", body = ErrorBody),
        (status = 503, description = "The erasure could not be logged, or the service is stopping", body = ErrorBody),
        (status = "default", description = "An error", body = ErrorBody),
    )
)]
pub async fn erase(State(live): State<Arc<Live>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let by = headers.get(ACTOR_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("unnamed HTTP client").to_owned();
    let Some(sym) = live.symbols.get(&id) else { return ApiError::NoPerson(id).into_response() };
    let (reply, outcome) = tokio::sync::oneshot::channel();
    let batch = Submission { erasure: Some(EraseRequest { id: sym, by, reply }), ..Submission::default() };
    match live.submit(batch) {
        Ok(()) => {}
        Err(Refused::Busy) => return ApiError::Busy.into_response(),
        Err(Refused::Closed) => return ApiError::ShuttingDown.into_response(),
    }
    match outcome.await {
        Ok(Ok(None)) => ApiError::NoPerson(id).into_response(),
        Ok(Err(reason)) => ApiError::ErasureNotLogged(reason).into_response(),
        Ok(Ok(Some(erasure))) => Json(Erased {
            erased: id,
            time: erasure.time,
            identities: erasure.identities.len(),
            events: erasure.events,
            links: erasure.links,
        })
        .into_response(),
        Err(_) => ApiError::StoppedBeforeErasure.into_response(),
    }
}

/// Erases the person of each of `ids` from the running service at `base` (its HTTP base URL),
/// with the bearer `token` if any, asked for `by`; prints what each erasure did.
pub fn erase_remote(base: &str, token: Option<&str>, ids: &[String], by: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting a runtime")?;
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for id in ids {
            let mut url = reqwest::Url::parse(base).with_context(|| format!("--server {base:?}: not a URL"))?;
            url.path_segments_mut()
                .map_err(|()| anyhow::anyhow!("--server {base:?}: not a base URL"))?
                .pop_if_empty()
                .extend(["v1", "customers", id]);
            let mut request = client.delete(url.clone()).header(ACTOR_HEADER, by);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.with_context(|| format!("DELETE {url}"))?;
            let status = response.status();
            let body = response.text().await.with_context(|| format!("reading the answer of DELETE {url}"))?;
            match status {
                StatusCode::OK => eprintln!("erased {id:?}: {}", body.trim()),
                StatusCode::NOT_FOUND => eprintln!("nothing to erase for {id:?}: no customer or device has that id"),
                _ => anyhow::bail!("DELETE {url}: {status}: {}", body.trim()),
            }
        }
        Ok(())
    })
}
