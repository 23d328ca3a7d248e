//! `stepstone serve`: runs a pipeline continuously and serves it.
//!
//! The data path stays one-way. Events arrive over HTTP ([`ingest`]) and from the configured
//! sources (followed as they grow, with `follow`); one driver thread ([`driver`]) numbers them,
//! feeds the engine and seals logical times; the engine's collector applies each time to the
//! tables and hands its changes to the [`live::Publisher`], which publishes them to the
//! subscribers ([`subscribe`]). Lookups ([`lookup`]) and Arrow Flight ([`flight`]) read the
//! tables; snapshots go to the output directory as in `stepstone run`.
//!
//! Every accepted ingest request is appended to the durable log ([`crate::journal`]) before it
//! is acknowledged; at start the service replays the log, so it continues where it stopped, even
//! after a crash.
//!
//! Both servers bind to loopback by default. With a token configured every `/v1` endpoint and
//! Flight require `Authorization: Bearer <token>`. SIGINT or SIGTERM stops ingest, drains the
//! engine, writes the final snapshot and exits.

mod api_error;
mod driver;
mod erase;
mod flight;
mod ingest;
mod live;
mod lookup;
mod metrics;
mod openapi;
mod recover;
mod submission;
mod subscribe;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use arrow_flight::flight_service_server::FlightServiceServer;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use stepstone_dataflows::event::SessionRule;
use stepstone_dataflows::symbols::Symbols;
use tokio::net::TcpListener;

use crate::config::Pipeline;
use crate::engine::Engine;
use crate::journal::{entry::Resume, keys::RecentKeys};
use crate::run::Setup;
use crate::source::lateness::{LatePolicy, SourceClock};
use crate::source::{Chunk, DecoderMessage, DecoderSpec, Input, spawn_decoder};
use api_error::ApiError;
use driver::Start;
pub use erase::erase_remote;
use live::{Live, Publisher};
use submission::Submission;

/// The most records of the configured sources the driver gets in one batch.
const SOURCE_BATCH: usize = 4096;

/// How long shutdown waits for connections to finish after the final snapshot.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Runs `pipeline` as a service until SIGINT or SIGTERM.
pub fn serve(pipeline: &Pipeline) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("stepstone-server")
        .enable_all()
        .build()
        .context("starting the server runtime")?;
    runtime.block_on(run(pipeline))
}

/// The service, from start to a clean stop.
async fn run(pipeline: &Pipeline) -> anyhow::Result<()> {
    let settings = pipeline.server.clone();
    let Setup { dead_letters, symbols, segments, collector } = Setup::new(pipeline)?;
    let keep_sessions = pipeline.params.session == SessionRule::ById;
    let (batches, queue) = crossbeam_channel::bounded::<Submission>(settings.ingest_queue);
    let live = Arc::new(Live::new(collector.tables(), symbols.clone(), pipeline, batches.clone()));
    let collector = collector.with_observer(Box::new(Publisher { live: live.clone() }));
    let stitching = pipeline.decode.mapping.stitches().then(|| symbols.clone());
    let mut engine = Engine::start(pipeline.params, segments, stitching, pipeline.workers, collector)?;
    // With HTTP ingest the only source and late events rejected, no event before the ingest
    // watermark can come: the journeys fold their history behind it, and memory stays flat.
    let settles = pipeline.inputs.is_empty() && pipeline.event_time.late == LatePolicy::Reject;
    let start = match pipeline.log.clone() {
        Some(log) => {
            let restored = tokio::task::block_in_place(|| {
                recover::recover(&mut engine, symbols.clone(), log, pipeline.events_per_time)
            })?;
            *live.http_clock.lock().expect("ingest clock lock") =
                SourceClock::resuming(pipeline.event_time, restored.resume.clock_latest);
            Start { journal: Some(restored.journal), resume: restored.resume, keys: restored.keys, settles }
        }
        None => Start { journal: None, resume: Resume::default(), keys: RecentKeys::default(), settles },
    };
    let stop_sources = Arc::new(AtomicBool::new(false));
    let driver =
        driver::spawn(engine, dead_letters, queue, live.clone(), settings.epoch_interval, stop_sources.clone(), start)?;

    let sources = (!pipeline.inputs.is_empty())
        .then(|| start_sources(pipeline, &symbols, keep_sessions, &stop_sources, batches.clone()))
        .transpose()?;
    drop(batches);

    let http =
        TcpListener::bind(&settings.listen).await.with_context(|| format!("listening on {}", settings.listen))?;
    let flight_address: SocketAddr = settings
        .flight_listen
        .parse()
        .with_context(|| format!("flight-listen {:?}: expected IP:PORT", settings.flight_listen))?;
    let flight = TcpListener::bind(flight_address)
        .await
        .with_context(|| format!("listening on {} (Flight)", settings.flight_listen))?;
    eprintln!(
        "stepstone serving on http://{} (Arrow Flight on grpc://{}); snapshots in {}",
        http.local_addr().context("the HTTP address")?,
        flight.local_addr().context("the Flight address")?,
        pipeline.out_dir.display()
    );

    let mut stopping = live.on_shutdown();
    // Deltas are small writes that must go out at once, not wait for the peer's acknowledgement.
    let http = http.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY on a connection: {error}");
        }
    });
    let http_server = axum::serve(http, router(live.clone())).with_graceful_shutdown(async move {
        let _ = stopping.changed().await;
    });
    let token = settings.token.clone();
    let service = FlightServiceServer::new(flight::TablesService { live: live.clone() });
    let service = tonic::service::interceptor::InterceptedService::new(service, move |request: tonic::Request<()>| {
        check_flight_token(token.as_deref(), request)
    });
    let mut stopping = live.on_shutdown();
    let flight_server = tonic::transport::Server::builder().add_service(service).serve_with_incoming_shutdown(
        tokio_stream::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(flight), |accepted| {
            accepted.inspect(|stream| {
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::warn!("cannot set TCP_NODELAY on a Flight connection: {error}");
                }
            })
        }),
        async move {
            let _ = stopping.changed().await;
        },
    );
    let http_task = tokio::spawn(async move { http_server.await.context("the HTTP server failed") });
    let flight_task = tokio::spawn(async move { flight_server.await.context("the Flight server failed") });

    wait_for_signal().await?;
    eprintln!("stopping: draining ingest and writing the final snapshot");
    live.stop_ingest();
    stop_sources.store(true, Ordering::Relaxed);
    let collected = tokio::task::spawn_blocking(move || driver.join())
        .await
        .context("waiting for the engine driver")?
        .map_err(|_| anyhow::anyhow!("the engine driver panicked"))?;
    // Sources reading stdin cannot be interrupted; they end with the process.
    drop(sources);
    live.shut_down();
    let collected = collected?;
    if !live.connections.all_closed(SHUTDOWN_GRACE).await {
        tracing::warn!("some subscriber connections did not close within {SHUTDOWN_GRACE:?}");
    }
    for (name, task) in [("HTTP", http_task), ("Flight", flight_task)] {
        let abort = task.abort_handle();
        match tokio::time::timeout(SHUTDOWN_GRACE, task).await {
            Ok(joined) => joined.with_context(|| format!("joining the {name} server"))??,
            Err(_) => {
                tracing::warn!("the {name} server still had connections after {SHUTDOWN_GRACE:?}; closing them");
                abort.abort();
            }
        }
    }
    eprintln!(
        "stopped at logical time {}; final snapshot in {}",
        collected.snapshot.time.map_or("-".to_owned(), |t| t.to_string()),
        pipeline.out_dir.display()
    );
    Ok(())
}

/// The HTTP routes: `/v1/*` behind the bearer token (if any), `/metrics` and `/healthz` open.
fn router(live: Arc<Live>) -> Router {
    let max_body = usize::try_from(live.settings.max_body_bytes.as_u64()).unwrap_or(usize::MAX);
    let v1 = Router::new()
        .route("/v1/events", post(ingest::ingest).layer(DefaultBodyLimit::max(max_body)))
        .route("/v1/subscribe", get(subscribe::websocket))
        .route("/v1/subscribe/sse", get(subscribe::sse))
        .route("/v1/customers/{id}", get(lookup::customer).delete(erase::erase))
        .route("/v1/segments", get(lookup::segments))
        .route("/v1/segments/{name}", get(lookup::segment))
        .route("/v1/transitions", get(lookup::transitions))
        .route("/v1/openapi.json", get(openapi::openapi))
        .route_layer(middleware::from_fn_with_state(live.clone(), require_token));
    Router::new()
        .merge(v1)
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .layer(middleware::map_response(api_error::json_errors))
        .with_state(live)
}

/// `GET /healthz`: whether the service answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    responses((status = 200, description = "The service answers", content_type = "text/plain", body = String))
)]
async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    responses((status = 200, description = "Prometheus metrics, in the text exposition format",
        content_type = "text/plain", body = String))
)]
async fn metrics(State(live): State<Arc<Live>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], live.metrics.render()).into_response()
}

/// Rejects requests without the configured bearer token with 401.
async fn require_token(State(live): State<Arc<Live>>, request: Request, next: Next) -> Response {
    if let Some(token) = &live.settings.token {
        let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if !bearer_matches(given, token) {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

/// The Flight counterpart of [`require_token`].
fn check_flight_token(token: Option<&str>, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    let Some(token) = token else { return Ok(request) };
    let given = request.metadata().get("authorization").and_then(|v| v.to_str().ok());
    if bearer_matches(given, token) {
        Ok(request)
    } else {
        Err(tonic::Status::unauthenticated("missing or wrong bearer token"))
    }
}

/// Whether the `Authorization` value `given` is `Bearer <token>` (the scheme in any case),
/// compared in time independent of where they differ.
fn bearer_matches(given: Option<&str>, token: &str) -> bool {
    let Some((scheme, credentials)) = given.and_then(|v| v.split_once(' ')) else { return false };
    let (a, b) = (credentials.trim().as_bytes(), token.as_bytes());
    scheme.eq_ignore_ascii_case("bearer") && a.len() == b.len() && a.iter().zip(b).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

/// Reads the configured inputs (followed as they grow when `follow` is set) on a decoder thread
/// and forwards their events and rejections to the engine driver until `stop` is set.
fn start_sources(
    pipeline: &Pipeline,
    symbols: &Arc<Symbols>,
    keep_sessions: bool,
    stop: &Arc<AtomicBool>,
    batches: crossbeam_channel::Sender<Submission>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut options = pipeline.decode.clone();
    if pipeline.follow {
        options.follow = Some(stop.clone());
    }
    let (decoded, decoder) = spawn_decoder(DecoderSpec {
        inputs: pipeline.inputs.clone(),
        format: pipeline.format,
        options,
        symbols: symbols.clone(),
        keep_sessions,
        event_time: pipeline.event_time,
    });
    let forwarder = std::thread::Builder::new()
        .name("stepstone-sources".into())
        .spawn(move || {
            // Every message ready now goes into one batch (a followed file's records come one
            // by one), up to a bound.
            while let Ok(first) = decoded.recv() {
                let mut batch = Submission::default();
                let mut message = Some(first);
                while let Some(next) = message.take() {
                    let Chunk { items, watermark, late_accepted } = match next {
                        DecoderMessage::Items(chunk) => chunk,
                        DecoderMessage::Failed(error) => {
                            tracing::error!("input failed: {error:#}");
                            let _ = batches.send(batch);
                            return;
                        }
                    };
                    for item in items {
                        match item {
                            Ok(Input { event, link, withheld }) => {
                                batch.events.extend(event);
                                batch.links.extend(link);
                                batch.withheld += u64::from(withheld);
                            }
                            Err(rejection) => batch.rejections.push(rejection),
                        }
                    }
                    batch.watermark = batch.watermark.max(watermark);
                    batch.late_accepted += late_accepted;
                    if batch.events.len() + batch.links.len() + batch.rejections.len() < SOURCE_BATCH {
                        message = decoded.try_recv().ok();
                    }
                }
                if batches.send(batch).is_err() {
                    return;
                }
            }
        })
        .context("spawning the source forwarder")?;
    Ok(vec![decoder, forwarder])
}

/// Waits for SIGINT or SIGTERM.
async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted.context("waiting for SIGINT"),
        _ = terminate.recv() => Ok(()),
    }
}
