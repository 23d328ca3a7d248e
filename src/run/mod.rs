//! `stepstone run` and `stepstone erase` without a server: a [`Pipeline`] from its inputs to its
//! final snapshot, in one pass along the data path — the decoder thread and the time cutter
//! ([`crate::source`]), the dataflows on timely workers ([`crate::engine`]), and the sinks the
//! collector writes ([`crate::sink`]).

mod summary;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use stepstone_dataflows::event::{Clock, SessionRule};
use stepstone_dataflows::segments::BoundSegment;
use stepstone_dataflows::symbols::Symbols;

use crate::config::Pipeline;
use crate::engine::{Collector, Engine, Erasure};
use crate::sink::{DeltaWriter, ErasureLog, SnapshotWriter, Tables};
use crate::source::{Cut, DeadLetterWriter, DecoderSpec, TimeCutter, spawn_decoder};
pub use summary::RunSummary;

/// Runs `pipeline` to the end of its inputs and returns what it did.
///
/// Bad records go to the dead-letter file; with `strict` the first one ends the run with an
/// error naming it. The final snapshot is written before this returns.
pub fn run(pipeline: &Pipeline) -> anyhow::Result<RunSummary> {
    run_erasing(pipeline, &[], "").map(|(summary, _)| summary)
}

/// Runs `pipeline` to the end of its inputs, then erases the person of each customer id (or
/// else device id) in `ids`, each at a logical time of its own, logging each erasure as asked
/// for `by`; the final snapshot holds none of them. Returns what the run did and each id's
/// erasure (`None` for an id no view knows).
pub fn run_erasing(
    pipeline: &Pipeline,
    ids: &[String],
    by: &str,
) -> anyhow::Result<(RunSummary, Vec<Option<Erasure>>)> {
    anyhow::ensure!(!pipeline.follow, "follow keeps reading forever: it is for stepstone serve, not run");
    let started = Instant::now();
    let Setup { mut dead_letters, symbols, segments, collector } = Setup::new(pipeline)?;
    let stitching = pipeline.decode.mapping.stitches().then(|| symbols.clone());
    let mut engine = Engine::start(pipeline.params, segments, stitching, pipeline.workers, collector)?;

    let live = pipeline.inputs.iter().any(|p| p == "-");
    let keep_sessions = pipeline.params.session == SessionRule::ById;
    let (decoded, decoder) = spawn_decoder(DecoderSpec {
        inputs: pipeline.inputs.clone(),
        format: pipeline.format,
        options: pipeline.decode.clone(),
        symbols: symbols.clone(),
        keep_sessions,
        event_time: pipeline.event_time,
    });
    let mut cutter = TimeCutter::new(decoded, pipeline.events_per_time, live);
    let fed = feed(&mut cutter, &mut dead_letters, &mut engine, pipeline.strict);
    let cutter_late = cutter.late_accepted();
    let withheld = cutter.withheld();
    drop(cutter);
    let erasures = match &fed {
        Ok(_) => erase(&mut engine, &symbols, ids, &ErasureLog::new(&pipeline.out_dir), by),
        Err(_) => Ok(Vec::new()),
    };
    let collected = engine.finish();
    decoder.join().map_err(|_| anyhow::anyhow!("the decoder thread panicked"))?;
    dead_letters.flush()?;

    let events = fed?;
    let erasures = erasures?;
    let late_accepted = cutter_late;
    let mut summary = RunSummary::new(events, late_accepted, &dead_letters, &collected?, &symbols, started.elapsed());
    summary.without_consent = withheld;
    summary.erased_events = erasures.iter().flatten().map(|erasure| erasure.events).sum();
    let path = pipeline.out_dir.join("summary.json");
    let json = serde_json::to_string_pretty(&summary).context("serializing the run summary")?;
    std::fs::write(&path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok((summary, erasures))
}

/// Erases the person of each of `ids` in turn, logging each erasure to `log`.
fn erase(
    engine: &mut Engine,
    symbols: &Symbols,
    ids: &[String],
    log: &ErasureLog,
    by: &str,
) -> anyhow::Result<Vec<Option<Erasure>>> {
    let mut erasures = Vec::with_capacity(ids.len());
    for id in ids {
        let erasure = match symbols.get(id) {
            Some(sym) => engine.erase(sym)?,
            None => None,
        };
        if let Some(erasure) = &erasure {
            log.record(erasure.record(), by)?;
        }
        erasures.push(erasure);
    }
    Ok(erasures)
}

/// What every way of running a pipeline sets up before its engine starts.
pub struct Setup {
    /// The dead-letter file.
    pub dead_letters: DeadLetterWriter,
    /// The symbol table of the run.
    pub symbols: Arc<Symbols>,
    /// The segments, bound to `symbols`.
    pub segments: Vec<BoundSegment>,
    /// The collector: sink tables, snapshots into the output directory, and the delta file
    /// when one is configured.
    pub collector: Collector,
}

impl Setup {
    /// Creates the output directory and the files of `pipeline`.
    pub fn new(pipeline: &Pipeline) -> anyhow::Result<Setup> {
        std::fs::create_dir_all(&pipeline.out_dir)
            .with_context(|| format!("creating the output directory {}", pipeline.out_dir.display()))?;
        let dead_letters = DeadLetterWriter::create(&pipeline.rejected)?;
        let symbols = Arc::new(Symbols::new());
        let segments: Vec<BoundSegment> = pipeline.segments.iter().map(|s| s.bind(&symbols)).collect();
        let deltas = pipeline.deltas.as_deref().map(|path| DeltaWriter::create(path, symbols.clone())).transpose()?;
        let tables = Tables::new(segments.iter().map(|s| s.name).collect());
        let collector = Collector::new(
            pipeline.workers,
            tables,
            SnapshotWriter::new(&pipeline.out_dir, pipeline.parquet, symbols.clone()),
            pipeline.snapshot_interval,
            deltas,
        );
        Ok(Setup { dead_letters, symbols, segments, collector })
    }
}

/// Feeds every event to the workers, sealing each logical time, and rejections to the dead-letter
/// file; returns the number of events fed.
fn feed(
    cutter: &mut TimeCutter,
    dead_letters: &mut DeadLetterWriter,
    engine: &mut Engine,
    strict: bool,
) -> anyhow::Result<u64> {
    let mut fed = 0u64;
    while let Some(cut) = cutter.next_cut()? {
        let (events, links, rejections) = match cut {
            Cut::Events(events, links, rejections) => (events, links, rejections),
            Cut::Seal(watermark) => {
                engine.seal(Clock::watermark(watermark))?;
                continue;
            }
        };
        for rejection in &rejections {
            dead_letters.write(rejection)?;
            if strict {
                bail!(
                    "bad record at {rejection} (--strict stops at the first bad record; the raw record is in {})",
                    dead_letters.path().display()
                );
            }
        }
        if !events.is_empty() {
            fed += events.len() as u64;
            engine.send(events)?;
        }
        engine.link(&links)?;
    }
    Ok(fed)
}
