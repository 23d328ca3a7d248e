#!/usr/bin/env python3
"""How a large file forced to disk holds up small forced appends to another file.

`stepstone serve` forces its log segment to disk once per logical time (group commit) while its
compactor writes a checkpoint of the whole history beside it. On ext4 (ordered data) a commit
also waits for data other files wrote since the previous commit, so a checkpoint forced only at
its end can hold up the log's commits for as long as its writeback takes. This measures that on
the machine it runs on, with the checkpoint forced once at its end (slice 0) and every N MiB
(what src/journal/compact.rs does), interleaved:

    python3 benches/fsync_interference.py [DIR] [CHECKPOINT_MIB] [SLICES_MIB...]
    python3 benches/fsync_interference.py target/fsync-test 600 0 8

An appender thread writes 4 KiB and fdatasyncs, every 2 ms, for the whole run; the printed
figures are its fdatasync latencies and the checkpoint's write time. Standard library only; the
files are removed afterwards.
"""

import os
import sys
import threading
import time
from pathlib import Path

REPEATS = 3


def measure(directory, checkpoint_mib, slice_mib):
    log_path, checkpoint_path = directory / "append.log", directory / "checkpoint.tmp"
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
    checkpoint = os.open(checkpoint_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    latencies, stop = [], threading.Event()

    def append():
        block = b"x" * 4096
        while not stop.is_set():
            started = time.perf_counter()
            os.write(log, block)
            os.fdatasync(log)
            latencies.append(time.perf_counter() - started)
            time.sleep(0.002)

    appender = threading.Thread(target=append)
    appender.start()
    time.sleep(0.5)
    chunk, pending = os.urandom(1 << 20), 0
    started = time.perf_counter()
    for _ in range(checkpoint_mib):
        os.write(checkpoint, chunk)
        pending += 1
        if slice_mib and pending >= slice_mib:
            os.fdatasync(checkpoint)
            pending = 0
    os.fsync(checkpoint)
    written = time.perf_counter() - started
    time.sleep(0.5)
    stop.set()
    appender.join()
    for fd, path in ((log, log_path), (checkpoint, checkpoint_path)):
        os.close(fd)
        path.unlink()
    latencies.sort()
    n = len(latencies)
    print(
        f"slice {slice_mib:>3} MiB: checkpoint {checkpoint_mib} MiB in {written:.2f} s; {n} appends, fdatasync "
        f"p50 {latencies[n // 2] * 1e3:.2f} ms, p99 {latencies[int(n * 0.99)] * 1e3:.1f} ms, "
        f"max {latencies[-1] * 1e3:.1f} ms",
        flush=True,
    )


def main():
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("target/fsync-test")
    checkpoint_mib = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    slices = [int(s) for s in sys.argv[3:]] or [0, 8]
    directory.mkdir(parents=True, exist_ok=True)
    for _ in range(REPEATS):
        for slice_mib in slices:
            measure(directory, checkpoint_mib, slice_mib)


if __name__ == "__main__":
    main()
