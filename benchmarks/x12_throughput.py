"""Benchmark: X12 867 read throughput (MB/s) and peak memory of `transforms.readers.x12.read_x12`.

Run on demand (not part of the test suite):

    .venv/bin/python benchmarks/x12_throughput.py --mb 200

It writes a synthetic 867 of about `--mb` megabytes (one interchange, one transaction set, a PTD
loop per line with its reseller N1/N3/N4 and an invoice REF, a QTY loop with LIN, UIT and AMT; one
line in ten a return, one in fifty a price adjustment, a line break after every segment), then
reads it in a child process and prints MB/s, records and the child's peak memory (max RSS).
Append the printed line to benchmarks/RESULTS.md with the machine and date.
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

TRANSFER = ["SS"] * 8 + ["BN", "SS"]


def write_867(path: Path, megabytes: float) -> int:
    """A synthetic 867 of about `megabytes` MB at `path`; returns its number of line items."""
    target = int(megabytes * 1_000_000)
    lines = 0
    segments = 4
    with path.open("w", encoding="ascii", newline="") as out:
        out.write(
            "ISA*00*          *00*          *ZZ*DISTRIBUTOR    *ZZ*VENDOR         *240105*1200*U*00401*"
            "000000001*0*P*>~\nGS*PT*DISTRIBUTOR*VENDOR*20240105*1200*1*X*004010~\nST*867*0001~\n"
            "BPT*00*R20240105*20240105*SD~\nCUR*SE*USD~\n"
        )
        size = out.tell()
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
            out.write(block)
            size += len(block)
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
from transforms.readers.x12 import read_x12

path = Path(sys.argv[1])
started = time.perf_counter()
with tempfile.TemporaryDirectory() as work:
    result = read_x12(path, X12Format(type="x12"), Path(work), ReadLimits())
    counts = result.records.select(
        pl.len().alias("records"),
        pl.col("_read_error").is_not_null().sum().alias("errors"),
        (pl.col("transaction_type") == "return").sum().alias("returns"),
    ).collect().row(0, named=True)
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_bytes": usage.ru_maxrss * 1024, **counts}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=float, default=200, help="size of the generated 867 in MB")
    parser.add_argument("--keep", type=Path, default=None, help="write the 867 here and keep it")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "bench.867.edi"
        lines = write_867(path, args.mb)
        size = path.stat().st_size
        completed = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)], cwd=root, check=True, capture_output=True, text=True
        )
    report = json.loads(completed.stdout)
    assert report["records"] == lines, (report, lines)
    megabytes = size / 1_000_000
    print(
        f"x12 867 read: {megabytes:.0f} MB, {lines} line items in {report['seconds']:.1f} s = "
        f"{megabytes / report['seconds']:.0f} MB/s ({report['cpu']:.1f} s CPU, {report['records']} records, "
        f"{report['returns']} returns), peak RSS {report['peak_bytes'] / 2**20:.0f} MiB "
        f"({platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, Python "
        f"{platform.python_version()})"
    )


if __name__ == "__main__":
    main()
