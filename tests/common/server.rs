//! The harness of the end-to-end tests of `stepstone serve` (`tests/serve.rs`,
//! `tests/durability.rs`): the binary started with a config on free loopback ports (in a
//! directory of its own, or again and again in the same one), its stderr captured, requests,
//! metrics, SIGTERM and SIGKILL; WebSocket and SSE subscribers read in the background; and a
//! replay of a subscription's messages that checks every rule of the protocol on the way.
//!
//! Every wait is bounded ([`WAIT`] for one condition, [`TEST_LIMIT`] for a whole test) and every
//! server is killed when it is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

use super::FullJourney;

/// The longest wait for any one condition (a server starting, a subscriber catching up, …).
pub const WAIT: Duration = Duration::from_secs(30);
/// The longest a whole test may take.
pub const TEST_LIMIT: Duration = Duration::from_secs(240);

/// Runs a test body under [`TEST_LIMIT`].
pub async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_LIMIT, body).await.expect("the test took longer than its time limit");
}

// ---------------------------------------------------------------------------------------------
// The server process.

/// A running `stepstone serve`, killed on drop if it still runs.
pub struct Server {
    child: Option<Child>,
    /// Holds the config and the output directory while the server lives (none when the caller
    /// owns the directory: [`Server::start_in`]).
    _dir: Option<tempfile::TempDir>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The HTTP address.
    pub http: SocketAddr,
    /// The Arrow Flight address.
    pub flight: SocketAddr,
    /// The snapshot directory it announced.
    pub out: PathBuf,
    /// Its stderr so far.
    stderr: Arc<Mutex<String>>,
    /// The token requests send, if any.
    pub token: Option<String>,
    /// An HTTP client for the server (no proxy, requests time out after [`WAIT`]).
    pub client: reqwest::Client,
}

impl Server {
    /// Starts `stepstone serve` with `config` (TOML; `[output] dir = "out"` is added when the
    /// config has no `[output]`) on free loopback ports and waits until it announces them.
    pub fn start(config: &str, token: Option<&str>) -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut server = Server::start_in(dir.path(), config, token);
        server._dir = Some(dir);
        server
    }

    /// [`Server::start`] in the directory `dir`, which the caller owns: the config is written to
    /// `dir/stepstone.toml` (replacing an earlier one) and the output directory is `dir/out`,
    /// so a server started again in `dir` continues from what the previous one left there.
    pub fn start_in(dir: &Path, config: &str, token: Option<&str>) -> Server {
        let config = if config.contains("[output]") {
            config.to_owned()
        } else {
            format!("{config}\n[output]\ndir = \"out\"\n")
        };
        let path = dir.join("stepstone.toml");
        std::fs::write(&path, config).expect("writing the config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_stepstone"))
            .args([
                "serve",
                "--config",
                path.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--flight-listen",
                "127.0.0.1:0",
            ])
            .current_dir(dir)
            .env_remove("STEPSTONE_TOKEN")
            .env("STEPSTONE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting stepstone serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (announced, announcement) = std::sync::mpsc::channel::<String>();
        let pipe = child.stderr.take().expect("the server's stderr");
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                log.lock().unwrap().push_str(&format!("{line}\n"));
                if line.starts_with("stepstone serving on ") {
                    let _ = announced.send(line);
                }
            }
        });
        let line = match announcement.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("stepstone serve did not announce its ports ({e}); stderr:\n{}", stderr.lock().unwrap());
            }
        };
        let between = |after: &str, until: char| -> String {
            let start = line.find(after).unwrap_or_else(|| panic!("{after:?} in {line:?}")) + after.len();
            line[start..].split(until).next().unwrap().to_owned()
        };
        let http: SocketAddr = between("http://", ' ').parse().expect("the HTTP address");
        let flight: SocketAddr = between("grpc://", ')').parse().expect("the Flight address");
        let out = PathBuf::from(line.split("; snapshots in ").nth(1).expect("the snapshot directory"));
        assert!(http.ip().is_loopback() && flight.ip().is_loopback(), "loopback only: {line}");
        assert_ne!(http.port(), 0);
        assert_ne!(flight.port(), 0);
        assert_eq!(
            std::fs::canonicalize(&out).expect("the snapshot directory exists"),
            std::fs::canonicalize(dir.join("out")).unwrap(),
            "the output directory is relative to the config file"
        );
        let client = reqwest::Client::builder().no_proxy().timeout(WAIT).build().expect("an HTTP client");
        Server {
            child: Some(child),
            _dir: None,
            base: format!("http://{http}"),
            http,
            flight,
            out,
            stderr,
            token: token.map(str::to_owned),
            client,
        }
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Adds the token (if any) to `request`.
    pub fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.header("authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    /// `POST /v1/events` with `body`: the status, the `Retry-After` header and the JSON answer.
    pub async fn post(&self, body: impl Into<reqwest::Body>) -> (u16, Option<String>, Value) {
        let request = self.authorized(self.client.post(format!("{}/v1/events", self.base))).body(body);
        let response = request.send().await.expect("POST /v1/events");
        let status = response.status().as_u16();
        let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.expect("the answer");
        let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("a JSON answer ({e}): {text:?}"));
        (status, retry, value)
    }

    /// `GET path` with the token: the status and the JSON answer.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.authorized(self.client.get(format!("{}{path}", self.base))).send().await.expect("GET");
        let status = response.status().as_u16();
        let text = response.text().await.expect("the answer");
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: a JSON answer ({e}): {text:?}")))
    }

    /// `GET path` with the token, which must answer 200.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, value) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {value}");
        value
    }

    /// The status of `method path` sent with the `authorization` header `auth` (none if `None`).
    pub async fn status_with(&self, method: reqwest::Method, path: &str, auth: Option<&str>) -> u16 {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send().await.expect("a request").status().as_u16()
    }

    /// `GET /metrics` (no token needed), parsed: `name{labels}` → value.
    pub async fn metrics(&self) -> BTreeMap<String, f64> {
        let response = self.client.get(format!("{}/metrics", self.base)).send().await.expect("GET /metrics");
        assert_eq!(response.status().as_u16(), 200);
        let text = response.text().await.unwrap();
        parse_metrics(&text)
    }

    /// Waits until the engine has taken `events` events and completed every sealed time, stably,
    /// and returns the latest complete logical time.
    pub async fn settle(&self, events: usize) -> u64 {
        let deadline = Instant::now() + WAIT;
        let mut previous: Option<f64> = None;
        loop {
            let m = self.metrics().await;
            let settled = m.get("stepstone_events_in_total") == Some(&(events as f64))
                && m.get("stepstone_engine_lag_seconds") == Some(&0.0)
                && m["stepstone_logical_time"] >= 0.0;
            if settled && previous == Some(m["stepstone_logical_time"]) {
                return m["stepstone_logical_time"] as u64;
            }
            previous = settled.then(|| m["stepstone_logical_time"]);
            assert!(Instant::now() < deadline, "the engine did not settle at {events} events: {m:?}");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Kills the process with SIGKILL (`kill -9`: no chance to write or sync anything more) and
    /// waits for it; its connections drop at once.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("a running server");
        child.kill().expect("SIGKILL");
        child.wait().expect("waiting for the killed server");
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("a running server");
        let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("running kill");
        assert!(killed.success(), "kill -TERM failed");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the server") {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not stop within {WAIT:?} of SIGTERM:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `ws://…/v1/subscribe?query` as a client request with the token.
    pub fn ws_request(&self, query: &str) -> tungstenite::handshake::client::Request {
        let mut request = format!("ws://{}/v1/subscribe{query}", self.http).into_client_request().expect("a request");
        if let Some(token) = &self.token {
            request.headers_mut().insert("authorization", HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        }
        request
    }

    /// A WebSocket subscription with the query `query` (`""`, `"?customer=…"`).
    pub async fn subscribe_ws(&self, query: &str) -> Subscriber {
        let (socket, _) =
            tokio_tungstenite::connect_async(self.ws_request(query)).await.expect("a WebSocket subscription");
        Subscriber::websocket(format!("ws{query}"), socket)
    }

    /// An SSE subscription with the query `query`.
    pub async fn subscribe_sse(&self, query: &str) -> Subscriber {
        let request = self.authorized(self.client.get(format!("{}/v1/subscribe/sse{query}", self.base)));
        // The subscription lives longer than a request's timeout.
        let response = request.timeout(TEST_LIMIT).send().await.expect("an SSE subscription");
        assert_eq!(response.status().as_u16(), 200, "SSE subscription {query}");
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(content_type.as_deref(), Some("text/event-stream"));
        Subscriber::sse(format!("sse{query}"), response)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- stepstone serve stderr ---\n{}", self.log());
        }
    }
}

/// Parses the Prometheus text format into `name{labels}` → value.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("a metric line: {line:?}"));
            (name.to_owned(), value.parse().unwrap_or_else(|_| panic!("a metric value: {line:?}")))
        })
        .collect()
}

/// `text` percent-encoded for a URL path segment or query value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Subscribers.

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
