//! Throughput: decode-only passes over each format of the workload (the baseline), and whole
//! [`run::run`] runs per format and worker count, each in a fresh child process that reports
//! its own elapsed time and peak RSS.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};

use super::BenchOptions;
use super::workload::{Encoding, Workload};
use stepstone::run;
use stepstone::source::{self, DecodeOptions};

/// A measured run that takes longer than this is killed and the bench fails.
const CHILD_TIMEOUT: Duration = Duration::from_secs(600);

/// The decode-only passes over one format.
pub struct DecodeRuns {
    /// The format.
    pub format: Encoding,
    /// The file decoded.
    pub path: PathBuf,
    /// The file's size in bytes.
    pub bytes: u64,
    /// Events decoded per pass.
    pub events: u64,
    /// Records rejected per pass.
    pub rejected: u64,
    /// Wall-clock seconds of each pass.
    pub seconds: Vec<f64>,
}

/// The bulk runs of one format on one worker count.
pub struct BulkRuns {
    /// The format.
    pub format: Encoding,
    /// The file run.
    pub path: PathBuf,
    /// Timely workers.
    pub workers: usize,
    /// Events per run.
    pub events: u64,
    /// Customers per run (those with at least one event).
    pub customers: u64,
    /// Seconds of each run, as the run itself reports them.
    pub seconds: Vec<f64>,
    /// Peak resident set size of each run's process, in bytes.
    pub peak_rss_bytes: Vec<u64>,
}

/// Everything the throughput measurement found.
pub struct Measured {
    /// Per format.
    pub decode: Vec<DecodeRuns>,
    /// Per format, then worker count in the order given.
    pub bulk: Vec<BulkRuns>,
}

/// What a child process reports on stdout about its run.
#[derive(Debug, Serialize, Deserialize)]
struct ChildReport {
    /// Events fed to the dataflows.
    events: u64,
    /// Customers with at least one event.
    customers: u64,
    /// Seconds of `run::run`, from its start to the final snapshot.
    seconds: f64,
    /// `VmHWM` of the child after the run, in bytes.
    peak_rss_bytes: u64,
}

/// Runs the decode-only passes and the bulk runs `options.reps` times, interleaving the
/// repetitions over all configurations. Bulk runs start `exe` and write below `scratch`.
pub fn measure(options: &BenchOptions, workload: &Workload, exe: &Path, scratch: &Path) -> anyhow::Result<Measured> {
    let decode_options = super::pipeline(workload.primary(), scratch, 1)?.decode;
    let mut decode = Vec::new();
    let mut bulk = Vec::new();
    for (format, path) in &workload.files {
        let format = *format;
        let bytes = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
        decode.push(DecodeRuns { format, path: path.clone(), bytes, events: 0, rejected: 0, seconds: Vec::new() });
        for &workers in &options.workers {
            bulk.push(BulkRuns {
                format,
                path: path.clone(),
                workers,
                events: 0,
                customers: 0,
                seconds: Vec::new(),
                peak_rss_bytes: Vec::new(),
            });
        }
    }
    for rep in 1..=options.reps {
        for runs in &mut decode {
            let path = &runs.path;
            let (events, rejected, elapsed) = decode_pass(path, &decode_options)?;
            ensure!(
                rep == 1 || (events, rejected) == (runs.events, runs.rejected),
                "{} decoded differently",
                path.display()
            );
            (runs.events, runs.rejected) = (events, rejected);
            runs.seconds.push(elapsed.as_secs_f64());
            eprintln!(
                "rep {rep}/{}  decode {:<5}      {:>8.3} s",
                options.reps,
                runs.format.name(),
                elapsed.as_secs_f64()
            );
        }
        for runs in &mut bulk {
            let input = &runs.path;
            let run_dir = scratch.join(format!("{}-w{}-r{rep}", runs.format.name(), runs.workers));
            let report = spawn_run(exe, input, &run_dir, runs.workers)?;
            std::fs::remove_dir_all(&run_dir).with_context(|| format!("removing {}", run_dir.display()))?;
            let decoded = decode.iter().find(|d| d.format == runs.format).map_or(0, |d| d.events);
            ensure!(
                report.events == decoded,
                "the run over {} fed {} events, but decoding found {decoded}",
                input.display(),
                report.events
            );
            runs.events = report.events;
            runs.customers = report.customers;
            runs.seconds.push(report.seconds);
            runs.peak_rss_bytes.push(report.peak_rss_bytes);
            eprintln!(
                "rep {rep}/{}  run {:<5} w={:<3}  {:>8.3} s  {:>6.0} MiB",
                options.reps,
                runs.format.name(),
                runs.workers,
                report.seconds,
                report.peak_rss_bytes as f64 / MIB
            );
        }
    }
    Ok(Measured { decode, bulk })
}

/// Bytes per MiB.
pub const MIB: f64 = 1024.0 * 1024.0;

/// Opens `path` and iterates every item; returns (events, rejections, elapsed).
fn decode_pass(path: &Path, options: &DecodeOptions) -> anyhow::Result<(u64, u64, Duration)> {
    let name = path.to_str().with_context(|| format!("{} is not UTF-8", path.display()))?;
    let started = Instant::now();
    let source = source::open(name, None, options).with_context(|| format!("opening {name}"))?;
    let (mut events, mut rejected) = (0, 0);
    for item in source {
        match std::hint::black_box(item) {
            Ok(_) => events += 1,
            Err(_) => rejected += 1,
        }
    }
    Ok((events, rejected, started.elapsed()))
}

/// Runs `exe bench --child-input input` on `workers` workers in a fresh process writing into
/// `run_dir`, and returns what it reports.
fn spawn_run(exe: &Path, input: &Path, run_dir: &Path, workers: usize) -> anyhow::Result<ChildReport> {
    std::fs::create_dir_all(run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let log = |name: &str| -> anyhow::Result<(PathBuf, File)> {
        let path = run_dir.join(name);
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok((path, file))
    };
    let (stdout_path, stdout) = log("stdout.txt")?;
    let (stderr_path, stderr) = log("stderr.txt")?;
    let mut child = Command::new(exe)
        .arg("--child-input")
        .arg(input)
        .arg("--child-out")
        .arg(run_dir.join("out"))
        .arg("--workers")
        .arg(workers.to_string())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for a bench run")? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the run over {} on {workers} workers took longer than {CHILD_TIMEOUT:?}", input.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |path: &Path| std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()));
    if !status.success() {
        bail!(
            "the run over {} on {workers} workers failed ({status}): {}",
            input.display(),
            read(&stderr_path)?.trim()
        );
    }
    let stdout = read(&stdout_path)?;
    let line = stdout.lines().last().context("a bench run printed nothing")?;
    serde_json::from_str(line).with_context(|| format!("parsing a bench run's report {line:?}"))
}

/// The body of a child process: runs `input` on `workers` workers into `out` and prints its
/// [`ChildReport`] as one JSON line.
pub fn child(input: &Path, out: &Path, workers: usize) -> anyhow::Result<()> {
    let summary = run::run(&super::pipeline(input, out, workers)?)?;
    let report = ChildReport {
        events: summary.events,
        customers: summary.customers as u64,
        seconds: summary.elapsed_seconds,
        peak_rss_bytes: peak_rss_bytes()?,
    };
    println!("{}", serde_json::to_string(&report).context("serializing the run report")?);
    Ok(())
}

/// The peak resident set size of this process so far, in bytes (`VmHWM` of `/proc/self/status`).
pub fn peak_rss_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status_bytes(&status, "VmHWM").context("no VmHWM line in /proc/self/status")
}

/// The memory figure `field` (`VmHWM`, `VmRSS`, …) of a `/proc/<pid>/status` text, in bytes.
pub(super) fn status_bytes(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?;
    let kib = line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::status_bytes;

    #[test]
    fn status_figures_are_read_in_bytes() {
        let status = "Name:\tstepstone\nVmPeak:\t  900000 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(status_bytes(status, "VmHWM"), Some(12345 * 1024));
        assert_eq!(status_bytes(status, "VmRSS"), Some(1000 * 1024));
        assert_eq!(status_bytes(status, "VmHWM2"), None);
        assert_eq!(status_bytes("Name:\tx\n", "VmHWM"), None);
    }
}
