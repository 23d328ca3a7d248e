//! The engine: runs a [`Pipeline`] end to end on timely workers.
//!
//! The data path is one-way. A decoder thread reads and decodes the inputs ([`reader`]); the
//! calling thread numbers events in arrival order, writes rejections to the dead-letter file and
//! cuts the stream into logical times (epochs), handing each worker its share; the workers
//! ([`worker`]) run the differential dataflows and report each completed time's output changes;
//! the collector thread ([`collector`]) applies them to the sink tables, writes context deltas and
//! Arrow snapshots. Every epoch reaches every worker (possibly empty), so all workers advance
//! their inputs together.

mod collector;
mod reader;
mod summary;
mod worker;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use crossbeam_channel::Sender;

use crate::config::Pipeline;
use crate::sink::{DeltaWriter, SnapshotWriter, Tables};
use crate::source::DeadLetterWriter;
use collector::{Collected, Collector};
use reader::EpochCutter;
use worker::Epoch;

pub use summary::RunSummary;

/// Runs `pipeline` to the end of its inputs and returns what it did.
///
/// Bad records go to the dead-letter file; with `strict` the first one ends the run with an
/// error naming it. The final snapshot is written before this returns.
pub fn run(pipeline: &Pipeline) -> anyhow::Result<RunSummary> {
    let started = Instant::now();
    std::fs::create_dir_all(&pipeline.out_dir)
        .with_context(|| format!("creating the output directory {}", pipeline.out_dir.display()))?;
    let mut dead_letters = DeadLetterWriter::create(&pipeline.rejected)?;
    let deltas = pipeline.deltas.as_deref().map(DeltaWriter::create).transpose()?;
    let tables = Tables::new(pipeline.segments.iter().map(|s| s.name.clone()).collect());
    let collector = Collector::new(
        pipeline.workers,
        tables,
        SnapshotWriter::new(&pipeline.out_dir, pipeline.parquet),
        pipeline.snapshot_interval,
        deltas,
    );

    let (completed_tx, completed_rx) = crossbeam_channel::unbounded();
    let collector = std::thread::Builder::new()
        .name("stepstone-collector".into())
        .spawn(move || collector.run(completed_rx))
        .context("spawning the collector thread")?;

    let mut epoch_senders: Vec<Sender<Epoch>> = Vec::with_capacity(pipeline.workers);
    let mut epoch_receivers = Vec::with_capacity(pipeline.workers);
    for _ in 0..pipeline.workers {
        let (tx, rx) = crossbeam_channel::bounded(1);
        epoch_senders.push(tx);
        epoch_receivers.push(Some(rx));
    }
    let epoch_receivers = Arc::new(Mutex::new(epoch_receivers));
    let (params, segments) = (pipeline.params, pipeline.segments.clone());
    let workers = timely::execute(timely::Config::process(pipeline.workers), move |w| {
        let epochs =
            epoch_receivers.lock().expect("epoch receivers")[w.index()].take().expect("one epoch receiver per worker");
        worker::run(w, params, segments.clone(), epochs, completed_tx.clone());
    })
    .map_err(anyhow::Error::msg)
    .context("starting the timely workers")?;

    let live = pipeline.inputs.iter().any(|p| p == "-");
    let (decoded, decoder) = reader::spawn_decoder(pipeline.inputs.clone(), pipeline.format, pipeline.decode.clone());
    let mut cutter = EpochCutter::new(decoded, pipeline.epoch_events, live);
    let fed = feed(&mut cutter, &mut dead_letters, &epoch_senders, pipeline.strict);
    drop(cutter);
    drop(epoch_senders);
    let worker_results = workers.join();
    let collected = collector.join().map_err(|_| anyhow::anyhow!("the collector thread panicked"))?;
    decoder.join().map_err(|_| anyhow::anyhow!("the decoder thread panicked"))?;
    dead_letters.flush()?;

    let events = fed?;
    for result in worker_results {
        result.map_err(anyhow::Error::msg).context("a timely worker failed")?;
    }
    let Collected { tables, snapshot, epochs, snapshots } = collected?;
    let summary = RunSummary::new(events, &dead_letters, &tables, snapshot, epochs, snapshots, started.elapsed());
    let path = pipeline.out_dir.join("summary.json");
    let json = serde_json::to_string_pretty(&summary).context("serializing the run summary")?;
    std::fs::write(&path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(summary)
}

/// Feeds every epoch to the workers and rejections to the dead-letter file; returns the number
/// of events fed.
fn feed(
    cutter: &mut EpochCutter,
    dead_letters: &mut DeadLetterWriter,
    workers: &[Sender<Epoch>],
    strict: bool,
) -> anyhow::Result<u64> {
    let mut events = 0u64;
    let mut time = 0u64;
    while let Some(cut) = cutter.next_cut()? {
        for rejection in &cut.rejections {
            dead_letters.write(rejection)?;
            if strict {
                bail!(
                    "bad record at {rejection} (--strict stops at the first bad record; the raw record is in {})",
                    dead_letters.path().display()
                );
            }
        }
        if cut.events.is_empty() {
            continue;
        }
        events += cut.events.len() as u64;
        let share = cut.events.len().div_ceil(workers.len());
        let mut rest = cut.events;
        for worker in workers {
            let tail = rest.split_off(share.min(rest.len()));
            let mine = std::mem::replace(&mut rest, tail);
            worker.send(Epoch { time, events: mine }).map_err(|_| anyhow::anyhow!("a timely worker stopped early"))?;
        }
        time += 1;
    }
    Ok(events)
}
