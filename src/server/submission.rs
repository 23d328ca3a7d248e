//! What reaches the engine driver of the live service, in arrival order: the decoded records of
//! an HTTP ingest request or of the configured sources, or an erasure; and how the driver
//! answers an ingest request ([`Ack`]) and an erasure.

use std::sync::Arc;

use stepstone_dataflows::event::{Event, NO_WATERMARK};
use stepstone_dataflows::symbols::Sym;
use tokio::sync::oneshot;

use crate::engine::Erasure;
use crate::journal;
use crate::source::{LinkChange, Rejection};

/// A request to erase a person, with where to send what the erasure did.
#[derive(Debug)]
pub struct EraseRequest {
    /// A customer id (or else device id) of the person.
    pub id: Sym,
    /// Who asks, for the erasure log.
    pub by: String,
    /// Where the outcome goes: what was erased (`None`: nobody has the id), or why the erasure,
    /// applied to the views, could not be logged.
    pub reply: oneshot::Sender<Result<Option<Erasure>, journal::Error>>,
}

/// How an HTTP ingest request ends.
#[derive(Debug)]
pub enum Ack {
    /// Its records are in the log (durable by the fsync policy) and fed to the engine.
    Logged,
    /// A request with the same idempotency key was acknowledged before, having accepted this
    /// many records; nothing was applied again.
    Duplicate(u64),
    /// Its records could not be logged and were not applied: why. One failed forced write
    /// refuses every request of its logical time, so they share the error.
    NotLogged(Arc<journal::Error>),
}

/// What the engine driver receives: one HTTP ingest request's records, a batch of the configured
/// sources' records, or an erasure.
#[derive(Debug)]
pub struct Submission {
    /// Decoded events, in arrival order; the driver numbers them.
    pub events: Vec<Event>,
    /// Links between identities stated or retracted, in arrival order.
    pub links: Vec<LinkChange>,
    /// Records that could not be decoded, or were late.
    pub rejections: Vec<Rejection>,
    /// The watermark of the batch's source after it ([`NO_WATERMARK`] for a bounded source).
    pub watermark: i64,
    /// Late events among `events`, accepted by `late = "accept"`.
    pub late_accepted: u64,
    /// Records withheld for want of analytics consent.
    pub withheld: u64,
    /// A person to erase once the batch's events are in.
    pub erasure: Option<EraseRequest>,
    /// The HTTP request's idempotency key, if it gave one.
    pub key: Option<String>,
    /// Records the HTTP request accepted (its answer).
    pub accepted: u64,
    /// The greatest event time HTTP ingest had admitted after the request.
    pub clock_latest: Option<i64>,
    /// Where an HTTP ingest request is acknowledged; such batches are logged. The configured
    /// sources' batches have none: their files are read again after a restart.
    pub ack: Option<oneshot::Sender<Ack>>,
}

impl Default for Submission {
    fn default() -> Self {
        Submission {
            events: Vec::new(),
            links: Vec::new(),
            rejections: Vec::new(),
            watermark: NO_WATERMARK,
            late_accepted: 0,
            withheld: 0,
            erasure: None,
            key: None,
            accepted: 0,
            clock_latest: None,
            ack: None,
        }
    }
}
