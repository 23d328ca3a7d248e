//! `DELETE /v1/customers/{id}`: erases a person. The request joins the ingest queue, so every
//! event accepted before it is erased too; it is answered once no view holds the person.

use std::sync::Arc;

use anyhow::Context;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ingest::error;
use super::live::{Live, Refused};
use super::submission::{EraseRequest, Submission};

/// The request header that names who asks for an erasure, for the erasure log.
pub const ACTOR_HEADER: &str = "stepstone-actor";

/// Handles `DELETE /v1/customers/{id}`: the customer id (or else device id) `id` and every
/// identity linked to it lose all their events and links in every view, and their later
/// events are dropped. Answers what was erased, or 404 when no view knows `id`.
pub async fn erase(State(live): State<Arc<Live>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let by = headers.get(ACTOR_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("unnamed HTTP client").to_owned();
    let not_found = || error(StatusCode::NOT_FOUND, format!("no customer or device {id:?}"));
    let Some(sym) = live.symbols.get(&id) else { return not_found() };
    let (reply, outcome) = tokio::sync::oneshot::channel();
    let batch = Submission { erasure: Some(EraseRequest { id: sym, by, reply }), ..Submission::default() };
    match live.submit(batch) {
        Ok(()) => {}
        Err(Refused::Busy) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "the engine is behind; retry later");
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        Err(Refused::Closed) => return error(StatusCode::SERVICE_UNAVAILABLE, "the service is shutting down"),
    }
    match outcome.await {
        Ok(Ok(None)) => not_found(),
        Ok(Err(reason)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "erased from every view, but the durable log could not record it (a restart would bring the person back; retry): {reason}"
            ),
        ),
        Ok(Ok(Some(erasure))) => Json(json!({
            "erased": id,
            "time": erasure.time,
            "identities": erasure.identities.len(),
            "events": erasure.events,
            "links": erasure.links,
        }))
        .into_response(),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the engine stopped before the erasure was applied"),
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
