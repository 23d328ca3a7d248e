//! The subscribers of the `stepstone serve` tests: WebSocket and SSE subscriptions read in the
//! background, and a replay of a subscription's messages that checks every rule of the protocol
//! on the way; also the journey line of an oracle row, as a replay holds it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chrono::{DateTime, SecondsFormat};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::FullJourney;
use super::server::WAIT;

/// What a subscriber's reader task reports.
#[derive(Debug)]
pub enum Received {
    /// One message, parsed.
    Message(Value),
    /// The connection ended (with a reason, for a close frame or an error).
    Closed(String),
}

/// A subscription read by a background task; the messages are collected in order.
pub struct Subscriber {
    /// What the subscription is called in assertion messages.
    pub name: String,
    incoming: mpsc::UnboundedReceiver<Received>,
    /// Every message so far, in order.
    pub messages: Vec<Value>,
    /// Why the connection ended, once it has.
    pub closed: Option<String>,
    reader: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    /// Reads the WebSocket `socket` in the background.
    pub fn websocket<S>(name: String, mut socket: tokio_tungstenite::WebSocketStream<S>) -> Subscriber
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, incoming) = mpsc::unbounded_channel();
        let label = name.clone();
        let reader = tokio::spawn(async move {
            loop {
                let received = match socket.next().await {
                    Some(Ok(Message::Text(text))) => Received::Message(
                        serde_json::from_str(text.as_str())
                            .unwrap_or_else(|e| panic!("{label}: a JSON message ({e}): {:?}", text.as_str())),
                    ),
                    Some(Ok(Message::Close(frame))) => Received::Closed(format!("close frame {frame:?}")),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => Received::Closed(format!("error: {e}")),
                    None => Received::Closed("end of stream".to_owned()),
                };
                let end = matches!(received, Received::Closed(_));
                if sender.send(received).is_err() || end {
                    return;
                }
            }
        });
        Subscriber { name, incoming, messages: Vec::new(), closed: None, reader }
    }

    /// Reads the SSE response `response` in the background: each event's `data:` is a message.
    pub fn sse(name: String, mut response: reqwest::Response) -> Subscriber {
        let (sender, incoming) = mpsc::unbounded_channel();
        let label = name.clone();
        let reader = tokio::spawn(async move {
            let mut buffer: Vec<u8> = Vec::new();
            loop {
                let chunk = match response.chunk().await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => {
                        let _ = sender.send(Received::Closed("end of stream".to_owned()));
                        return;
                    }
                    Err(e) => {
                        let _ = sender.send(Received::Closed(format!("error: {e}")));
                        return;
                    }
                };
                buffer.extend_from_slice(&chunk);
                while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                    let event: Vec<u8> = buffer.drain(..end + 2).collect();
                    let event = String::from_utf8(event).expect("UTF-8 events");
                    let data: Vec<&str> = event
                        .lines()
                        .filter_map(|line| line.strip_prefix("data:"))
                        .map(|data| data.strip_prefix(' ').unwrap_or(data))
                        .collect();
                    if data.is_empty() {
                        continue; // a keep-alive comment
                    }
                    let text = data.join("\n");
                    let value =
                        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{label}: a JSON event ({e}): {text:?}"));
                    if sender.send(Received::Message(value)).is_err() {
                        return;
                    }
                }
            }
        });
        Subscriber { name, incoming, messages: Vec::new(), closed: None, reader }
    }

    /// Takes what the reader has received so far, waiting at most until `deadline` for more;
    /// false if nothing came.
    pub async fn pull(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.incoming.recv()).await {
            Ok(Some(Received::Message(value))) => {
                self.messages.push(value);
                true
            }
            Ok(Some(Received::Closed(why))) => {
                self.closed = Some(why);
                true
            }
            Ok(None) => {
                self.closed.get_or_insert_with(|| "the reader stopped".to_owned());
                false
            }
            Err(_) => false,
        }
    }

    /// Waits (bounded) until `done` holds for the messages so far.
    pub async fn wait_until(&mut self, what: &str, done: impl Fn(&[Value], Option<&str>) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(&self.messages, self.closed.as_deref()) {
            let more = self.pull(deadline).await;
            if !more && (Instant::now() >= deadline || self.closed.is_some()) {
                panic!(
                    "{}: {what} did not happen within {WAIT:?}; closed: {:?}; last messages: {:?}",
                    self.name,
                    self.closed,
                    &self.messages[self.messages.len().saturating_sub(5)..]
                );
            }
        }
    }

    /// Waits (bounded) until a progress message for `time` (or later) has arrived.
    pub async fn wait_progress(&mut self, time: u64) {
        self.wait_until(&format!("progress for time {time}"), |messages, _| {
            messages.iter().any(|m| m["type"] == "progress" && m["time"].as_u64().is_some_and(|t| t >= time))
        })
        .await;
    }

    /// Waits (bounded) until the connection has ended.
    pub async fn wait_closed(&mut self) {
        self.wait_until("the end of the connection", |_, closed| closed.is_some()).await;
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A subscription's messages replayed: the state as of its last progress message, with every
/// rule of the protocol checked on the way.
#[derive(Debug, Default)]
pub struct Replay {
    /// The snapshot's time.
    pub snapshot_time: Option<u64>,
    /// The snapshot's row count.
    pub snapshot_rows: usize,
    /// The current journey rows by customer (the lines without `time` and `diff`).
    pub journeys: BTreeMap<String, Value>,
    /// The current memberships `(segment, customer)`.
    pub memberships: BTreeSet<(String, String)>,
    /// The progress times after the snapshot's, in order.
    pub progress: Vec<u64>,
    /// Delta lines after the snapshot rows (up to the last progress).
    pub delta_lines: usize,
    /// Every delta line received, snapshot rows included.
    pub lines: Vec<Value>,
    /// The final `lagged` or `closing` message, if one came.
    pub end: Option<Value>,
}

impl Replay {
    /// Applies one delta line, checking that it is consistent with the state.
    pub fn apply(&mut self, line: &Value, who: &str) {
        let diff = line["diff"].as_i64().unwrap_or_else(|| panic!("{who}: a diff in {line}"));
        assert!(diff == 1 || diff == -1, "{who}: diff ±1 in {line}");
        assert_eq!(line["journey_key"], Value::Null, "{who}: no journey key in {line}");
        let customer = line["customer"].as_str().unwrap_or_else(|| panic!("{who}: a customer in {line}")).to_owned();
        match line["type"].as_str() {
            Some("journey") => {
                let mut row = line.clone();
                let fields = row.as_object_mut().unwrap();
                fields.remove("time");
                fields.remove("diff");
                if diff < 0 {
                    let current = self.journeys.remove(&customer);
                    assert_eq!(current.as_ref(), Some(&row), "{who}: a removed row is the current row ({line})");
                } else {
                    let replaced = self.journeys.insert(customer, row);
                    assert!(replaced.is_none(), "{who}: a row entered before the previous one left ({line})");
                }
            }
            Some("segment") => {
                let segment = line["segment"].as_str().unwrap_or_else(|| panic!("{who}: a segment in {line}"));
                assert_eq!(line.as_object().unwrap().len(), 6, "{who}: the fields of a segment line: {line}");
                let key = (segment.to_owned(), customer);
                if diff < 0 {
                    assert!(self.memberships.remove(&key), "{who}: a membership ended that had not begun ({line})");
                } else {
                    assert!(self.memberships.insert(key), "{who}: a membership began twice ({line})");
                }
            }
            _ => panic!("{who}: a delta line of unknown type: {line}"),
        }
    }
}

/// Replays `messages` (see [`Replay`]).
pub fn replay(messages: &[Value], who: &str) -> Replay {
    let mut state = Replay::default();
    let mut messages = messages.iter().peekable();
    let header = messages.next().unwrap_or_else(|| panic!("{who}: no snapshot message"));
    assert_eq!(header["type"], "snapshot", "{who}: the first message is the snapshot's: {header}");
    assert_eq!(header.as_object().unwrap().len(), 3, "{who}: the snapshot message's fields: {header}");
    state.snapshot_time = match &header["time"] {
        Value::Null => None,
        time => Some(time.as_u64().unwrap_or_else(|| panic!("{who}: a snapshot time: {header}"))),
    };
    state.snapshot_rows = header["rows"].as_u64().unwrap_or_else(|| panic!("{who}: snapshot rows: {header}")) as usize;
    if state.snapshot_time.is_none() {
        assert_eq!(state.snapshot_rows, 0, "{who}: no rows before the first time");
    }
    for _ in 0..state.snapshot_rows {
        let line = messages.next().unwrap_or_else(|| panic!("{who}: the snapshot's rows end early"));
        assert_eq!(line["diff"], 1, "{who}: snapshot rows have diff 1: {line}");
        assert_eq!(line["time"].as_u64(), state.snapshot_time, "{who}: snapshot rows are of its time: {line}");
        state.apply(line, who);
        state.lines.push(line.clone());
    }
    let mut last = state.snapshot_time;
    if let Some(time) = state.snapshot_time {
        let progress = messages.next().unwrap_or_else(|| panic!("{who}: no progress after the snapshot"));
        assert_eq!(progress, &json!({"type": "progress", "time": time}), "{who}: progress after the snapshot");
    }
    let mut pending: Vec<&Value> = Vec::new();
    for message in messages.by_ref() {
        match message["type"].as_str() {
            Some("journey" | "segment") => pending.push(message),
            Some("progress") => {
                let time = message["time"].as_u64().unwrap_or_else(|| panic!("{who}: a progress time: {message}"));
                assert_eq!(message.as_object().unwrap().len(), 2, "{who}: the progress message's fields: {message}");
                assert!(last.is_none_or(|last| time > last), "{who}: progress {time} after {last:?}");
                let mut inserting = false;
                for line in pending.drain(..) {
                    assert_eq!(line["time"].as_u64(), Some(time), "{who}: a line before progress {time}: {line}");
                    let removal = line["diff"] == -1;
                    assert!(!(removal && inserting), "{who}: removals come before insertions at time {time}");
                    inserting |= !removal;
                    state.apply(line, who);
                    state.lines.push(line.clone());
                    state.delta_lines += 1;
                }
                state.progress.push(time);
                last = Some(time);
            }
            Some("lagged" | "closing") => {
                state.end = Some(message.clone());
                break;
            }
            _ => panic!("{who}: an unknown message: {message}"),
        }
    }
    if let Some(extra) = messages.next() {
        panic!("{who}: a message after {:?}: {extra}", state.end);
    }
    state
}

/// `ms` as RFC 3339 with milliseconds and `Z`, as the service writes times.
pub fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The journey line of `customer` (without `time` and `diff`) that the full oracle's `j`
/// stands for, as a subscriber's replay holds it.
pub fn journey_line(customer: &str, j: &FullJourney) -> Value {
    json!({
        "type": "journey",
        "customer": customer,
        "journey_key": null,
        "first_time": rfc3339(j.first_time),
        "last_time": rfc3339(j.last_time),
        "events": j.events,
        "sessions": j.sessions,
        "session_start": rfc3339(j.session_start),
        "session_events": j.session_events,
        "path": j.path,
        "channels": j.channel_events.keys().collect::<Vec<_>>(),
        "channel_events": j.channel_events,
        "converted": j.converted(),
        "conversions": j.conversions,
        "last_conversion_time": j.last_conversion_time.map(rfc3339),
        "value": j.value(),
    })
}
