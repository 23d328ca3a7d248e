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
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use stepstone_dataflows::event::Identity;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use utoipa::IntoParams;

use super::api_error::{ApiError, ErrorBody};
use super::live::{Connection, Live, Published};
use crate::sink::DeltaLine;
use crate::sink::deltas::{journey_row_line, membership_line};

/// Messages a subscription task buffers for its connection.
const CONNECTION_BUFFER: usize = 256;

/// How long a last message (`lagged`, `closing`) may wait for room in a full connection buffer.
const LAST_MESSAGE: Duration = Duration::from_millis(500);

/// The query of a subscription.
#[derive(Debug, Deserialize, IntoParams)]
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
    fn of(query: FilterQuery) -> Result<Filter, ApiError> {
        match (query.customer, query.segment) {
            (Some(_), Some(_)) => Err(ApiError::CustomerAndSegment),
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
#[utoipa::path(
    get,
    path = "/v1/subscribe",
    tag = "subscriptions",
    params(FilterQuery),
    responses(
        (status = 101, description = "A WebSocket of JSON messages: a snapshot of the current rows, then the \
            deltas of each complete logical time and its progress message"),
        (status = 400, description = "Not a WebSocket request, or both a customer and a segment", body = ErrorBody),
        (status = 503, description = "Too many subscribers, or the service is stopping", body = ErrorBody),
        (status = "default", description = "An error", body = ErrorBody),
    )
)]
pub async fn websocket(
    State(live): State<Arc<Live>>,
    Query(query): Query<FilterQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let messages = match start(&live, query) {
        Ok(messages) => messages,
        Err(error) => return error.into_response(),
    };
    let open = live.connections.open();
    upgrade.on_upgrade(move |socket| forward(socket, messages, open)).into_response()
}

/// `GET /v1/subscribe/sse`: a Server-Sent Events subscription (each message one `data:` event).
#[utoipa::path(
    get,
    path = "/v1/subscribe/sse",
    tag = "subscriptions",
    params(FilterQuery),
    responses(
        (status = 200, description = "An event stream: each `data:` one JSON message, as on the WebSocket",
            content_type = "text/event-stream", body = String),
        (status = 400, description = "Both a customer and a segment", body = ErrorBody),
        (status = 503, description = "Too many subscribers, or the service is stopping", body = ErrorBody),
        (status = "default", description = "An error", body = ErrorBody),
    )
)]
pub async fn sse(State(live): State<Arc<Live>>, Query(query): Query<FilterQuery>) -> Response {
    let messages = match start(&live, query) {
        Ok(messages) => messages,
        Err(error) => return error.into_response(),
    };
    let events = ReceiverStream::new(messages).map(|message| Ok::<_, Infallible>(Event::default().data(message)));
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

/// Sends the subscription's messages over the WebSocket until either side ends; messages that
/// are ready together go out in one write. The service waits for it at shutdown (`_open`).
async fn forward(mut socket: WebSocket, mut messages: mpsc::Receiver<String>, _open: Connection) {
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

/// Counts a subscriber while it lives; holds its place under `max-subscribers`.
struct Counted {
    live: Arc<Live>,
    /// Released on drop, with the count.
    _place: OwnedSemaphorePermit,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.live.metrics.subscribers.dec();
    }
}

/// Starts a subscription: takes the snapshot and the delta stream under the tables' lock and
/// spawns the task that produces the subscriber's messages.
fn start(live: &Arc<Live>, query: FilterQuery) -> Result<mpsc::Receiver<String>, ApiError> {
    let filter = Filter::of(query)?;
    let place = live
        .subscriber_places
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::TooManySubscribers(live.settings.max_subscribers))?;
    live.metrics.subscribers.inc();
    let counted = Counted { live: live.clone(), _place: place };
    let (time, snapshot, mut deltas) = {
        let tables = live.tables.read().expect("tables lock");
        let names = live.symbols.names();
        let time = tables.time();
        let at = time.unwrap_or(0);
        let mut lines = Vec::new();
        match &filter {
            Filter::All => {
                for row in tables.journeys().values() {
                    lines.push(journey_row_line(at, row, 1, &names)?);
                }
                for (segment, _) in tables.segments() {
                    for journey in tables.members(segment) {
                        lines.push(membership_line(at, &(segment, *journey), 1, &names)?);
                    }
                }
            }
            Filter::Customer(customer) => {
                // The lines of profile `customer`: its own journeys, or its device's.
                let tables = &*tables;
                let rows: Vec<_> = match live.symbols.get(customer) {
                    Some(id) => [false, true]
                        .into_iter()
                        .flat_map(|device| tables.journeys_of(Identity { device, id }))
                        .collect(),
                    None => Vec::new(),
                };
                for row in rows {
                    lines.push(journey_row_line(at, row, 1, &names)?);
                    for segment in tables.segments_of(row.journey) {
                        lines.push(membership_line(at, &(segment, row.journey), 1, &names)?);
                    }
                }
            }
            Filter::Segment(segment) => {
                if let Some(segment) = live.symbols.get(segment) {
                    for journey in tables.members(segment) {
                        lines.push(membership_line(at, &(segment, *journey), 1, &names)?);
                    }
                }
            }
        }
        (time, lines, live.deltas.subscribe())
    };
    let (sender, receiver) = mpsc::channel(CONNECTION_BUFFER);
    let mut out = Outbox { sender, shutdown: live.on_shutdown() };
    tokio::spawn(async move {
        let _counted = counted;
        let header = json!({ "type": "snapshot", "time": time, "rows": snapshot.len() }).to_string();
        if !out.send(header).await {
            return;
        }
        for line in snapshot {
            if !out.send(line.json).await {
                return;
            }
        }
        if let Some(time) = time
            && !out.send(progress(time)).await
        {
            return;
        }
        loop {
            let received = tokio::select! {
                // Deliver every published time before the closing message.
                biased;
                received = deltas.recv() => received,
                _ = out.shutdown.changed() => {
                    out.last(json!({ "type": "closing" }).to_string()).await;
                    return;
                }
                // The connection went away: free the place now, not at the next delta.
                _ = out.sender.closed() => return,
            };
            let published: Arc<Published> = match received {
                Ok(published) => published,
                Err(RecvError::Lagged(missed)) => {
                    out.last(json!({ "type": "lagged", "missed": missed }).to_string()).await;
                    return;
                }
                Err(RecvError::Closed) => return,
            };
            for line in published.lines.iter().filter(|line| filter.matches(line)) {
                if !out.send(line.json.clone()).await {
                    return;
                }
            }
            if !out.send(progress(published.time)).await {
                return;
            }
        }
    });
    Ok(receiver)
}

/// Where a subscription task puts its messages.
struct Outbox {
    /// To the connection.
    sender: mpsc::Sender<String>,
    /// Turns true at shutdown.
    shutdown: watch::Receiver<bool>,
}

impl Outbox {
    /// Sends `message`, waiting while the connection's buffer is full; `false` once the
    /// connection is gone or the service shuts down meanwhile (then the subscriber is told).
    async fn send(&mut self, message: String) -> bool {
        tokio::select! {
            sent = self.sender.send(message) => sent.is_ok(),
            _ = self.shutdown.changed() => {
                self.last(json!({ "type": "closing" }).to_string()).await;
                false
            }
        }
    }

    /// Sends a last message if the connection takes it soon.
    async fn last(&self, message: String) {
        let _ = tokio::time::timeout(LAST_MESSAGE, self.sender.send(message)).await;
    }
}

/// The progress message of a complete time.
fn progress(time: u64) -> String {
    json!({ "type": "progress", "time": time }).to_string()
}
