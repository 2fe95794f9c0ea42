"""Ctrl-C on `pet run`: one line, exit 130, the temporary Prefect server gone (a real subprocess)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, SHARED

pytestmark = pytest.mark.skipif(not (SHARED / "models" / "splade-tiny").exists(), reason="needs ../shared")


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


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_sigint_stops_with_one_line_and_exit_130(tmp_path):
    work = tmp_path / "work"
    cmd = [str(REPO / ".venv" / "bin" / "pet") if (REPO / ".venv" / "bin" / "pet").exists() else "pet",
           "run", str(REPO / "configs" / "sst2-splade-tiny.yaml"), "--set", f"work_dir={work}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    deadline = time.time() + 240
    while not (work / "data").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)  # the flow has started once its data copies exist
    time.sleep(3)
    children = _children(proc.pid)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted; finished units are kept, rerun to resume" in err
    assert "Traceback" not in err
    assert "it/s" not in err  # stderr is a pipe, not a terminal: no progress bars
    time.sleep(1)
    assert not [c for c in children if Path(f"/proc/{c}").exists()], "a child process outlived the CLI"
