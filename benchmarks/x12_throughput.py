"""Benchmark: X12 867 read throughput (MB/s) and peak memory of `transforms.readers.x12.read_x12`.

Run on demand (not part of the test suite):

    .venv/bin/python benchmarks/x12_throughput.py --mb 200 --repeat 3
    .venv/bin/python benchmarks/x12_throughput.py --mb 200 --repeat 3 --no-breaks

It writes a synthetic 867 of about `--mb` megabytes (one interchange, one transaction set, a PTD
loop per line with its reseller N1/N3/N4 and an invoice REF, a QTY loop with LIN, UIT and AMT; one
line in ten a return, one in fifty a price adjustment; a line break after every segment, as most
senders write, unless `--no-breaks`). Writing the file is not timed.

Each of `--repeat` runs reads the file in a fresh child process. What is timed is the
`read_x12` call alone: decoding, tokenizing, assembling the records and spilling them all to
Parquet in the work folder (the reader returns once every record is on disk). Python start-up and
imports (numba and the reader's modules, which `read_x12` imports on first use) come before the
clock starts; counting the records back (to check them) comes after it. Before the clock, the
child also reads a tiny 867 once: the first read in a process loads the reader's compiled code
(from numba's cache, or compiles it when there is none), which is reported apart as "first use".
It prints the best run's MB/s (file bytes / wall seconds of the read), that run's CPU seconds
(user + system, all threads), the largest peak memory (max RSS) of the child processes and the
longest first use, with the machine's load average: on a shared machine report the best of
several runs. Append the printed line to benchmarks/RESULTS.md with the machine and date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TextIO

TRANSFER = ["SS"] * 8 + ["BN", "SS"]


class _NoBreaks:
    """A text file writer that drops line breaks."""

    def __init__(self, handle: TextIO) -> None:
        self.handle = handle

    def write(self, text: str) -> int:
        return self.handle.write(text.replace("\n", ""))


def write_867(path: Path, megabytes: float, breaks: bool = True) -> int:
    """A synthetic 867 of about `megabytes` MB at `path`; returns its number of line items.
    With `breaks`, a line break follows every segment terminator."""
    target = int(megabytes * 1_000_000)
    lines = 0
    segments = 3  # ST, BPT, CUR
    with path.open("w", encoding="ascii", newline="") as handle:
        out = handle if breaks else _NoBreaks(handle)
        out.write(
            "ISA*00*          *00*          *ZZ*DISTRIBUTOR    *ZZ*VENDOR         *240105*1200*U*00401*"
            "000000001*0*P*>~\nGS*PT*DISTRIBUTOR*VENDOR*20240105*1200*1*X*004010~\nST*867*0001~\n"
            "BPT*00*R20240105*20240105*SD~\nCUR*SE*USD~\n"
        )
        size = handle.tell()
        while size < target:
            code = "PA" if lines % 50 == 49 else TRANSFER[lines % 10]
            quantity = lines % 7 + 1
            block = (
                f"PTD*{code}~\nDTM*003*2024{lines % 12 + 1:02d}{lines % 28 + 1:02d}~\nREF*IV*INV{lines:09d}~\n"
                f"N1*BY*RESELLER {lines % 997} INC*91*R{lines % 997:05d}~\nN3*{lines % 500} MAIN STREET~\n"
                f"N4*SPRINGFIELD*IL*{62700 + lines % 90}*US~\nQTY*32*{quantity}*EA~\n"
                f"LIN*{lines % 99 + 1}*VP*SKU-{lines % 3001:05d}*UP*0{lines % 3001:011d}~\n"
                f"UIT*EA*{12.5 + lines % 5:.2f}~\nAMT*1*{quantity * (12.5 + lines % 5):.2f}~\n"
            )
            size += out.write(block)
            lines += 1
            segments += 10
        out.write(f"CTT*{lines}~\nSE*{segments + 2}*0001~\nGE*1*1~\nIEA*1*000000001~\n")
    return lines


CHILD = """
import json, resource, sys, tempfile, time
from pathlib import Path
import polars as pl
from schemas.feed_spec import X12Format
from schemas.limits import ReadLimits
from transforms.readers import x12_stream  # what read_x12 imports on first use, not timed
from transforms.readers.x12 import read_x12

path, tiny = Path(sys.argv[1]), Path(sys.argv[2])
with tempfile.TemporaryDirectory() as work:
    started = time.perf_counter()
    read_x12(tiny, X12Format(type="x12"), Path(work) / "tiny", ReadLimits()).records.collect()
    first_use = time.perf_counter() - started
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = read_x12(path, X12Format(type="x12"), Path(work), ReadLimits())
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    counts = result.records.select(
        pl.len().alias("records"),
        pl.col("_read_error").is_not_null().sum().alias("errors"),
        (pl.col("transaction_type") == "return").sum().alias("returns"),
    ).collect().row(0, named=True)
cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_bytes": after.ru_maxrss * 1024, "first_use": first_use, **counts}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=float, default=200, help="size of the generated 867 in MB")
    parser.add_argument("--repeat", type=int, default=3, help="reads of the file; the best is reported")
    parser.add_argument(
        "--breaks",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a line break after every segment",
    )
    parser.add_argument("--keep", type=Path, default=None, help="write the 867 here and keep it")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "bench.867.edi"
        lines = write_867(path, args.mb, args.breaks)
        size = path.stat().st_size
        tiny = Path(scratch) / "tiny.867.edi"
        write_867(tiny, 0.001, args.breaks)
        for _ in range(max(1, args.repeat)):
            completed = subprocess.run(
                [sys.executable, "-c", CHILD, str(path), str(tiny)],
                cwd=root,
                check=True,
                capture_output=True,
                text=True,
            )
            report = json.loads(completed.stdout)
            assert report["records"] == lines and report["errors"] == 0, (report, lines)
            runs.append(report)
    best = min(runs, key=lambda run: run["seconds"])
    megabytes = size / 1_000_000
    rates = ", ".join(f"{megabytes / run['seconds']:.0f}" for run in runs)
    print(
        f"x12 867 read ({'line breaks' if args.breaks else 'no line breaks'}): {megabytes:.0f} MB, {lines} line "
        f"items in {best['seconds']:.2f} s = {megabytes / best['seconds']:.0f} MB/s, best of {len(runs)} "
        f"(runs {rates} MB/s; {best['cpu']:.1f} s CPU, "
        f"{best['records']} records, {best['returns']} returns), peak RSS "
        f"{max(run['peak_bytes'] for run in runs) / 2**20:.0f} MiB, first use "
        f"{max(run['first_use'] for run in runs):.1f} s ({platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}, Python {platform.python_version()})"
    )


if __name__ == "__main__":
    main()
