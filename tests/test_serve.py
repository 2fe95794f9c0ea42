"""``mlflow models serve`` of the registered champion answers as ``pet predict`` labels."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from predict_registry import LABELS, TEXTS, registry  # noqa: F401 (a fixture)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, payload: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


@pytest.mark.slow  # starts an `mlflow models serve` server
def test_mlflow_models_serve_answers_with_the_champion(registry, tmp_path):
    port = _free_port()
    bin_dir = Path(sys.executable).parent  # the server execs `uvicorn` from PATH: the venv's, unactivated
    env = dict(os.environ, MLFLOW_TRACKING_URI=registry["uri"],
               PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    mlflow_cli = bin_dir / "mlflow"
    log = open(tmp_path / "serve.log", "wb")
    # its own process group: the server's workers are stopped with it
    proc = subprocess.Popen(
        [str(mlflow_cli), "models", "serve", "-m", "models:/predict-clf@champion", "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no /ping answer in 120 s: " + (tmp_path / "serve.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(1)
        answer = _post(f"http://127.0.0.1:{port}/invocations", {"dataframe_records": [{"text": t} for t in TEXTS[:2]]})
        rows = answer["predictions"]
        assert len(rows) == 2
        # the label and every label's probability, as `pet predict` writes them
        for row, expected in zip(rows, registry["expected"]["2"]):
            assert row["label"] == LABELS[int(expected.argmax())]
            assert [row["prob_pos"], row["prob_neg"]] == pytest.approx(expected.tolist(), abs=1e-4)
    finally:
        log.close()
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):  # the group may be gone already
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
