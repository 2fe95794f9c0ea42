"""An unlabeled file bigger than the memory the run may use: `pet run` under a memory cgroup.

Builds a JSON Lines file of IMDB reviews (../shared/data/imdb/unsup.jsonl.gz, each copy of a
review tagged so that no two rows are equal) of ``--file-gb`` GiB, then runs the whole pet flow
(configs/sst2-splade-tiny.yaml with that file as ``data.unlabeled``, ``limit`` texts drawn with
a seed) in a cgroup-v1 memory cgroup capped at ``--limit-gb`` GiB: the CLI's pre-check, the Arrow
conversion and row check of every line, the shuffled sample, training, soft-labeling,
distillation and registration. The kernel kills a process of the cgroup that needs more than the
cap (page cache is reclaimed first, so reading the file does not count against it).

Every labeled text costs the same whatever the file's size, so the sample is small (``--limit``):
what this measures is that reading and checking all of a file bigger than the memory cap works.

    sudo-less here (root): .venv/bin/python benchmarks/big_file.py --file-gb 3 --limit-gb 2

Rows are appended to benchmarks/big_file_results.json.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pet_io.atomic import atomic_path

ROOT = Path(__file__).resolve().parents[1]
IMDB = ROOT.parent / "shared" / "data" / "imdb" / "unsup.jsonl.gz"
CONFIG = ROOT / "configs" / "sst2-splade-tiny.yaml"
RESULTS = Path(__file__).with_name("big_file_results.json")
CGROUP_ROOT = Path("/sys/fs/cgroup/memory")
GiB = 2**30


def build_file(path: Path, size: int) -> int:
    """IMDB reviews, copy k of review i tagged ``(copy k)``, until the file holds ``size`` bytes."""
    if path.exists() and path.stat().st_size >= size:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)
    with gzip.open(IMDB, "rt", encoding="utf-8") as fh:
        reviews = [json.loads(line)["text"] for line in fh]
    rows, written, k = 0, 0, 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        while written < size:
            for text in reviews:
                line = json.dumps({"id": f"{k}-{rows}", "text": f"{text} (copy {k})"}) + "\n"
                out.write(line)
                written += len(line.encode())
                rows += 1
                if written >= size:
                    break
            k += 1
    return rows


def cgroup(limit: int) -> Path:
    if not (CGROUP_ROOT / "memory.limit_in_bytes").exists():
        raise SystemExit(f"no cgroup-v1 memory controller at {CGROUP_ROOT}: this benchmark needs one (and root)")
    group = CGROUP_ROOT / f"pet-big-file-{os.getpid()}"
    group.mkdir()
    (group / "memory.limit_in_bytes").write_text(str(limit))
    swap = group / "memory.memsw.limit_in_bytes"
    if swap.exists():  # no escape into swap either
        swap.write_text(str(limit))
    return group


def anon_bytes(group: Path) -> int:
    """Anonymous memory of the whole group, each page once: what cannot be dropped like page cache
    (the sum of the processes' VmRSS would count the memory-mapped Arrow file and shared libraries
    once per process)."""
    for line in (group / "memory.stat").read_text().splitlines():
        if line.startswith("total_rss "):
            return int(line.split()[1])
    return 0


def largest_rss(pids: list[str]) -> int:
    largest = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    largest = max(largest, int(line.split()[1]) * 1024)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return largest


def oom_kills(group: Path) -> int:
    for line in (group / "memory.oom_control").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return -1


def run(args) -> dict:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    big = work / "imdb-big.jsonl"
    t0 = time.time()
    rows = build_file(big, int(args.file_gb * GiB))
    print(f"{big}: {big.stat().st_size / GiB:.2f} GiB, {rows:,} rows ({time.time() - t0:.0f} s to build)", flush=True)
    run_dir = work / f"run-{int(time.time())}"
    overrides = {
        "data.unlabeled.path": str(big), "data.unlabeled.text_a": "text", "data.unlabeled.limit": str(args.limit),
        "data.unlabeled.seed": "0", "work_dir": str(run_dir), "name": "big-file",
        "tracking.tracking_uri": f"sqlite:///{run_dir}/mlflow.db",
    }
    cmd = [str(ROOT / ".venv" / "bin" / "pet"), "run", str(CONFIG), "--json"]
    for key, value in overrides.items():
        cmd += ["--set", f"{key}={value}"]
    group = cgroup(int(args.limit_gb * GiB))
    peak_anon, peak_rss, peak_usage = 0, 0, 0
    try:
        start = time.time()
        enter = lambda: (group / "cgroup.procs").write_text(str(os.getpid()))  # noqa: E731 (runs in the child)
        out_path = work / "pet-run.json"
        with open(work / "pet-run.log", "w") as log, open(out_path, "w") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=log, text=True, preexec_fn=enter)
            while proc.poll() is None:
                pids = (group / "cgroup.procs").read_text().split()
                peak_rss = max(peak_rss, largest_rss(pids))
                peak_anon = max(peak_anon, anon_bytes(group))
                time.sleep(0.5)
        seconds = time.time() - start
        peak_usage = int((group / "memory.max_usage_in_bytes").read_text())
        kills = oom_kills(group)
    finally:
        for pid in (group / "cgroup.procs").read_text().split():  # nothing left behind in the group
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
        group.rmdir()
    summary = {}
    try:
        summary = json.loads(out_path.read_text())
    except json.JSONDecodeError:
        pass
    return {
        "machine": f"{platform.node()} {os.cpu_count()} cores, {platform.processor() or platform.machine()}, no GPU",
        "date": time.strftime("%Y-%m-%d"),
        "file_bytes": big.stat().st_size, "file_rows": rows, "memory_limit_bytes": int(args.limit_gb * GiB),
        "sample": args.limit, "exit_code": proc.returncode, "oom_kills": kills, "seconds": round(seconds, 1),
        "peak_anon_mb": round(peak_anon / 2**20), "peak_largest_process_rss_mb": round(peak_rss / 2**20),
        "peak_cgroup_usage_mb": round(peak_usage / 2**20),  # page cache included: it fills up to the cap
        "n_soft_labeled": summary.get("n_soft_labeled"),
        "ensemble_test_accuracy": (summary.get("ensemble_metrics") or {}).get("test_accuracy"),
        "classifier_test_accuracy": (summary.get("classifier_metrics") or {}).get("test_accuracy"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file-gb", type=float, default=3.0, help="size of the unlabeled file to build (GiB)")
    ap.add_argument("--limit-gb", type=float, default=2.0, help="memory cap of the run's cgroup (GiB)")
    ap.add_argument("--limit", type=int, default=2000, help="texts sampled from the file (data.unlabeled.limit)")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "pet-big-file"), help="scratch folder")
    args = ap.parse_args(argv)
    row = run(args)
    print(json.dumps(row, indent=2))
    print(f"the run's log: {Path(args.work) / 'pet-run.log'}")
    rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    RESULTS.write_text(json.dumps(rows + [row], indent=2) + "\n")
    return 0 if row["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
