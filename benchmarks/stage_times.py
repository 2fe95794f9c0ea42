"""Stage seconds of finished `pet run`s, read from their MLflow stores, side by side in one results file.

For comparing one job across commits or CPUs (each store is a fresh work_dir's `mlflow.db`). Seconds are each
run's end minus start as MLflow recorded them; the flow is the parent run.

    .venv/bin/python benchmarks/stage_times.py --out benchmarks/readme_job_avx2_results.json \\
        --run before=OLD_WORK_DIR/mlflow.db --run after=NEW_WORK_DIR/mlflow.db --note "..."
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostinfo import machine  # noqa: E402


def stage_seconds(db: Path) -> dict[str, float]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute("select r.start_time, r.end_time, (select value from tags t where t.run_uuid = r.run_uuid "
                       "and t.key = 'stage') from runs r where r.end_time is not null order by r.start_time").fetchall()
    return {stage or "flow": round((end - start) / 1000, 1) for start, end, stage in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, help="NAME=PATH of an mlflow.db")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--note", default="", help="what the runs were: commits, command, load")
    args = ap.parse_args()
    runs = {name: stage_seconds(Path(path)) for name, path in (r.split("=", 1) for r in args.run)}
    args.out.write_text(json.dumps({"machine": machine(), "note": args.note, "stage_s": runs}, indent=1) + "\n")
    print(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
