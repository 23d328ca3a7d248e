//! Subscriptions to context deltas: WebSocket `/v1/subscribe` and Server-Sent Events
//! `/v1/subscribe/sse`, for one customer, one segment or everything.
//!
//! A subscriber first receives `{"type":"snapshot","time":T,…}`, then the current rows for its
//! filter as delta lines of time `T` with `diff` 1, then `{"type":"progress","time":T}`. After
//! that it receives every delta line of each later time followed by that time's progress
//! message, which says the time is complete. The snapshot and the subscription are taken under
//! the tables' lock, so no delta is missed or seen twice. Each subscriber has a bounded buffer:
//! one that falls more than the configured number of times behind gets
//! `{"type":"lagged","missed":N}` and is closed, and can subscribe again; it never slows the
//! engine or the other subscribers.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::ingest::error;
use super::live::{Live, Published};
use crate::sink::DeltaLine;
use crate::sink::deltas::{journey_row_line, membership_line};

/// Messages a subscription task buffers for its connection.
const CONNECTION_BUFFER: usize = 256;

/// The query of a subscription.
#[derive(Debug, Deserialize)]
pub struct FilterQuery {
    /// Only this customer's journey rows and memberships.
    customer: Option<String>,
    /// Only this segment's memberships.
    segment: Option<String>,
}

/// Which delta lines a subscriber receives.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Filter {
    /// Every line.
    All,
    /// The lines of one customer.
    Customer(String),
    /// The membership lines of one segment.
    Segment(String),
}

impl Filter {
    fn of(query: FilterQuery) -> Result<Filter, String> {
        match (query.customer, query.segment) {
            (Some(_), Some(_)) => Err("subscribe to a customer or a segment, not both".to_owned()),
            (Some(customer), None) => Ok(Filter::Customer(customer)),
            (None, Some(segment)) => Ok(Filter::Segment(segment)),
            (None, None) => Ok(Filter::All),
        }
    }

    fn matches(&self, line: &DeltaLine) -> bool {
        match self {
            Filter::All => true,
            Filter::Customer(customer) => *line.customer == **customer,
            Filter::Segment(segment) => line.segment.as_deref() == Some(segment.as_str()),
        }
    }
}

/// `GET /v1/subscribe`: a WebSocket subscription.
pub async fn websocket(
    State(live): State<Arc<Live>>,
    Query(query): Query<FilterQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let messages = match start(&live, query) {
        Ok(messages) => messages,
        Err((status, message)) => return error(status, message),
    };
    upgrade.on_upgrade(move |socket| forward(socket, messages)).into_response()
}

/// `GET /v1/subscribe/sse`: a Server-Sent Events subscription (each message one `data:` event).
pub async fn sse(State(live): State<Arc<Live>>, Query(query): Query<FilterQuery>) -> Response {
    let messages = match start(&live, query) {
        Ok(messages) => messages,
        Err((status, message)) => return error(status, message),
    };
    let events = ReceiverStream::new(messages).map(|message| Ok::<_, Infallible>(Event::default().data(message)));
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

/// Sends the subscription's messages over the WebSocket until either side ends; messages that
/// are ready together go out in one write.
async fn forward(mut socket: WebSocket, mut messages: mpsc::Receiver<String>) {
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Some(text) => {
                    let mut sent = socket.feed(Message::Text(text.into())).await;
                    while sent.is_ok() && let Ok(more) = messages.try_recv() {
                        sent = socket.feed(Message::Text(more.into())).await;
                    }
                    if sent.is_err() || socket.flush().await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Counts a subscriber while it lives.
struct Counted(Arc<Live>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.metrics.subscribers.dec();
    }
}

/// Starts a subscription: takes the snapshot and the delta stream under the tables' lock and
/// spawns the task that produces the subscriber's messages.
fn start(live: &Arc<Live>, query: FilterQuery) -> Result<mpsc::Receiver<String>, (StatusCode, String)> {
    let filter = Filter::of(query).map_err(|message| (StatusCode::BAD_REQUEST, message))?;
    if live.metrics.subscribers.get() >= live.settings.max_subscribers as i64 {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            format!("too many subscribers (max-subscribers = {})", live.settings.max_subscribers),
        ));
    }
    live.metrics.subscribers.inc();
    let counted = Counted(live.clone());
    let (time, snapshot, mut deltas) = {
        let tables = live.tables.read().expect("tables lock");
        let names = live.symbols.names();
        let time = tables.time();
        let at = time.unwrap_or(0);
        let mut lines = Vec::new();
        let journeys: Vec<_> = match &filter {
            Filter::All => tables.journeys().values().collect(),
            Filter::Customer(customer) => live.symbols.get(customer).map(|c| tables.journeys_of(c)).unwrap_or_default(),
            Filter::Segment(_) => Vec::new(),
        };
        for row in journeys {
            lines.push(journey_row_line(at, row, 1, &names).map_err(internal)?);
        }
        let segments: Vec<_> = match &filter {
            Filter::Segment(segment) => live.symbols.get(segment).into_iter().collect(),
            _ => tables.segments().into_iter().map(|(segment, _)| segment).collect(),
        };
        for segment in segments {
            for journey in tables.members(segment) {
                let line = membership_line(at, &(segment, *journey), 1, &names).map_err(internal)?;
                if filter.matches(&line) {
                    lines.push(line);
                }
            }
        }
        (time, lines, live.deltas.subscribe())
    };
    let (sender, receiver) = mpsc::channel(CONNECTION_BUFFER);
    let mut shutdown = live.on_shutdown();
    tokio::spawn(async move {
        let _counted = counted;
        let header = json!({ "type": "snapshot", "time": time, "rows": snapshot.len() }).to_string();
        if sender.send(header).await.is_err() {
            return;
        }
        for line in snapshot {
            if sender.send(line.json).await.is_err() {
                return;
            }
        }
        if let Some(time) = time
            && sender.send(progress(time)).await.is_err()
        {
            return;
        }
        loop {
            let received = tokio::select! {
                // Deliver every published time before the closing message.
                biased;
                received = deltas.recv() => received,
                _ = shutdown.changed() => {
                    let _ = sender.send(json!({ "type": "closing" }).to_string()).await;
                    return;
                }
            };
            let published: Arc<Published> = match received {
                Ok(published) => published,
                Err(RecvError::Lagged(missed)) => {
                    let _ = sender.send(json!({ "type": "lagged", "missed": missed }).to_string()).await;
                    return;
                }
                Err(RecvError::Closed) => return,
            };
            for line in published.lines.iter().filter(|line| filter.matches(line)) {
                if sender.send(line.json.clone()).await.is_err() {
                    return;
                }
            }
            if sender.send(progress(published.time)).await.is_err() {
                return;
            }
        }
    });
    Ok(receiver)
}

/// The progress message of a complete time.
fn progress(time: u64) -> String {
    json!({ "type": "progress", "time": time }).to_string()
}

/// An internal error, for an error response.
fn internal(e: anyhow::Error) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
}
