//! The harness of the end-to-end tests of `stepstone serve` (`serve/`, `durability/`): the
//! binary started with a config on free loopback ports (in a directory of its own, or again and
//! again in the same one), its stderr captured, requests, metrics, SIGTERM and SIGKILL. Its
//! subscribers and the replay of their messages are in [`super::subscriber`].
//!
//! Every wait is bounded ([`WAIT`] for one condition, [`TEST_LIMIT`] for a whole test) and every
//! server is killed when it is dropped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self};

use super::subscriber::Subscriber;

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
