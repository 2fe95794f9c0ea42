"""`pet run` stopped from outside, as real processes: a terminal Ctrl-C (SIGINT to the whole process
group), a SIGTERM to the CLI alone (`timeout`, `kill`), and a SIGKILL followed by a rerun."""
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from conftest import REPO, SHARED

pytestmark = [
    pytest.mark.slow,  # real `pet run` processes, each a minute or more
    pytest.mark.skipif(not (SHARED / "models" / "splade-tiny").exists(), reason="needs ../shared"),
    pytest.mark.skipif(sys.platform != "linux", reason="reads /proc"),
]
CONFIG = REPO / "configs" / "sst2-splade-tiny.yaml"
PET = str(REPO / ".venv" / "bin" / "pet") if (REPO / ".venv" / "bin" / "pet").exists() else "pet"


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # field 4 of /proc/PID/stat: the parent pid
            out.add(int(stat.parent.name))
    return out


def _alive(pids) -> list[int]:
    return [p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in Path(f"/proc/{p}/stat").read_text().split()[2]]


def _start(tmp_path: Path, *sets: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PREFECT_HOME=str(tmp_path / "prefect"))
    env.pop("PREFECT_API_URL", None)  # the CLI starts its own temporary server
    env.pop("MLFLOW_TRACKING_URI", None)  # set by earlier tests' mlflow.set_tracking_uri: use the work_dir store
    (tmp_path / "prefect").mkdir(exist_ok=True)
    cmd = [PET, "run", str(CONFIG), "--set", f"work_dir={tmp_path / 'work'}"] + [a for s in sets for a in ("--set", s)]
    # a session of its own, as a shell gives a foreground job: Ctrl-C goes to its whole process group
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def _wait_for_training(proc: subprocess.Popen, work: Path) -> None:
    """Until a pattern model's MLflow run is open: the run is deep in its work."""
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (work / "mlflow.db").exists() and any(
            name.startswith("pattern-") and status == "RUNNING" for name, status in _named_runs(work)
        ):
            time.sleep(3)
            return
        time.sleep(1)
    raise AssertionError(proc.stderr.read()[-3000:] if proc.poll() is not None else "no training after 240 s")


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm", "sigterm-group"])
def test_terminal_ctrl_c_stops_with_one_line_exit_130_and_no_child_left(tmp_path, stop):
    proc = _start(tmp_path, "pet.train.max_steps=20000")  # a unit of many minutes: a stop must not wait for its end
    _wait_for_training(proc, tmp_path / "work")
    children = _children(proc.pid)
    assert children, "the CLI should run its temporary Prefect server as a child"
    t0 = time.time()
    if stop == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    elif stop == "sigterm-group":
        os.killpg(proc.pid, signal.SIGTERM)  # `kill -- -PGID`, a container stop: the temporary server gets it too
    else:
        proc.send_signal(signal.SIGTERM)  # what `timeout`, `kill` and service managers do: the CLI alone
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # not left training for the rest of the session
        raise
    assert proc.returncode == 130, err[-2000:]
    assert time.time() - t0 < 60
    assert "interrupted; finished units are kept, rerun to resume" in err
    assert "Traceback" not in err and "ConnectError" not in err
    assert "it/s" not in err  # stderr is a pipe, not a terminal: no progress bars
    time.sleep(1)
    assert not _alive(children), "a child process outlived the CLI"
    runs = _runs(tmp_path / "work")
    assert runs and "RUNNING" not in runs.values(), runs


def test_a_rerun_closes_the_runs_of_a_killed_run(tmp_path):
    work = tmp_path / "work"
    proc = _start(tmp_path, "pet.train.max_steps=400")
    _wait_for_training(proc, work)
    children = _children(proc.pid)
    proc.kill()
    proc.communicate(timeout=30)
    time.sleep(2)
    assert not _alive(children), "the temporary Prefect server outlived a killed CLI"
    dead = _runs(work)
    assert "RUNNING" in dead.values()
    (dead_flow_run,) = _flow_runs(tmp_path)

    small = ("pet.train.max_steps=2", "distill.train.max_steps=2", "data.unlabeled.limit=16", "data.test.limit=16")
    rerun = _start(tmp_path, *small)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-3000:]
    assert "a killed run left the pipeline slot taken" in err
    after = _runs(work)
    assert {after[r] for r, status in dead.items() if status == "RUNNING"} == {"KILLED"}
    assert "RUNNING" not in after.values()
    assert _flow_runs(tmp_path)[dead_flow_run] == "CRASHED"
    first, *warnings = out.strip().splitlines()  # the result's line, then one line per warning
    assert first.startswith("run done: ") and "registered" in first and all(w.startswith("  WARNING ") for w in warnings)


def _runs(work: Path) -> dict[str, str]:
    client = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    exps = [e.experiment_id for e in client.search_experiments()]
    return {r.info.run_id: r.info.status for r in client.search_runs(exps)}


def _named_runs(work: Path) -> list[tuple[str, str]]:
    try:
        with sqlite3.connect(work / "mlflow.db") as db:
            return db.execute("select name, status from runs").fetchall()
    except sqlite3.Error:  # the store is still being created
        return []


def _flow_runs(tmp_path: Path) -> dict[str, str]:
    with sqlite3.connect(tmp_path / "prefect" / "prefect.db") as db:
        return dict(db.execute("select id, state_type from flow_run").fetchall())
