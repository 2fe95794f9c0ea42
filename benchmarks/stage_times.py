"""Stage seconds of finished `pet run`s, read from their MLflow stores, side by side in one results file.

For comparing one job across commits or CPUs (each store is a fresh work_dir's `mlflow.db`). Seconds are each
run's end minus start as MLflow recorded them (`tasks_bench.stage_seconds`, as the benchmark units record theirs),
plus the parts a stage logs (a pattern model's train_s, dev_scoring_s, ...); "flow" is the parent run.

    .venv/bin/python benchmarks/stage_times.py --out benchmarks/readme_job_avx2_results.json \\
        --run before=OLD_WORK_DIR/mlflow.db --run after=NEW_WORK_DIR/mlflow.db --note "..."
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostinfo import machine  # noqa: E402
from tasks_bench import stage_seconds  # noqa: E402


def flow_stage_seconds(db: Path) -> dict[str, float]:
    """The store's one flow run (the run no other is nested under) and its stages, as tasks_bench reads a unit's."""
    import mlflow

    uri = f"sqlite:///{db.resolve()}"
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    flows = [r for r in runs if "mlflow.parentRunId" not in r.data.tags and r.info.end_time]
    if len(flows) != 1:
        raise SystemExit(f"{db}: {len(flows)} finished flow runs; give the store of one fresh run")
    flow = flows[0]
    return {"flow": round((flow.info.end_time - flow.info.start_time) / 1000, 1), **stage_seconds(uri, flow.info.run_id)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, help="NAME=PATH of an mlflow.db")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--note", default="", help="what the runs were: commits, command, load")
    args = ap.parse_args()
    runs = {name: flow_stage_seconds(Path(path)) for name, path in (r.split("=", 1) for r in args.run)}
    args.out.write_text(json.dumps({"machine": machine(), "note": args.note, "stage_s": runs}, indent=1) + "\n")
    print(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
