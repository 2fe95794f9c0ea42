"""Who holds a pipeline's slot, and cleaning up after a holder that was killed outright.

A run killed with SIGKILL (or by the OOM killer, or a power cut) runs no cleanup: its MLflow runs
stay RUNNING, its Prefect flow run stays Running, and its slot of the pipeline's concurrency limit
stays taken (with a temporary server the lease that would have expired dies with the server), so
the next run would wait forever. Each run therefore records itself as the slot's holder in the
work folder; the next run finds a record whose process is gone and closes what it left: MLflow
runs KILLED, the flow run Crashed, the slot freed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import socket
from pathlib import Path

import mlflow
from mlflow.entities import RunStatus
from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.exceptions import ObjectNotFound
from prefect.states import Crashed

from pet_config.schema import PipelineConfig
from pet_io.atomic import write_json_atomic


@dataclasses.dataclass(frozen=True)
class SlotHolder:
    pid: int
    host: str
    process_start: str  # /proc start time: tells a live holder from a new process given the same pid
    flow_run_id: str | None

    @classmethod
    def me(cls, flow_run_id: str | None) -> "SlotHolder":
        return cls(os.getpid(), socket.gethostname(), _process_start(os.getpid()), flow_run_id)

    def is_gone(self) -> bool:
        if self.host != socket.gethostname():
            return False  # another machine's process: its lease expiring frees the slot
        return _process_start(self.pid) != self.process_start


def _process_start(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "" if not _alive(pid) else "alive"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def holder_path(cfg: PipelineConfig) -> Path:
    return cfg.work_path / "runs" / f"{cfg.name}.holder.json"


@contextlib.contextmanager
def local_lock(cfg: PipelineConfig):
    """Processes of this machine check-and-take the slot one at a time (no two recover the same holder)."""
    path = holder_path(cfg).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def held_elsewhere(cfg: PipelineConfig, me: SlotHolder) -> SlotHolder | None:
    """A live run of this machine recorded as the holder, other than ``me``: it took the slot of another Prefect
    server (a command run without PREFECT_API_URL starts a temporary one), which this server's limit cannot see.
    A holder on another host is left to the shared server's limit (its lease expires if it dies)."""
    holder = read_holder(cfg)
    if holder is None or holder == me or holder.host != me.host or holder.is_gone():
        return None
    if holder.flow_run_id:
        with get_client(sync_client=True) as client:
            try:
                client.read_flow_run(holder.flow_run_id)
                return None  # a run of this server: its limit makes the wait
            except ObjectNotFound:
                pass
    return holder


def read_holder(cfg: PipelineConfig) -> SlotHolder | None:
    try:
        return SlotHolder(**json.loads(holder_path(cfg).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def write_holder(cfg: PipelineConfig, holder: SlotHolder) -> None:
    write_json_atomic(holder_path(cfg), dataclasses.asdict(holder))


def clear_holder(cfg: PipelineConfig, holder: SlotHolder) -> None:
    if read_holder(cfg) == holder:
        holder_path(cfg).unlink(missing_ok=True)


def recover_dead_holder(cfg: PipelineConfig, slot: str, log: logging.Logger | None = None) -> SlotHolder | None:
    """If the recorded holder's process is gone, close its runs and free the slot; return it."""
    dead = read_holder(cfg)
    if dead is None or not dead.is_gone():
        return None
    killed = close_mlflow_runs(cfg, dead.flow_run_id)
    with get_client(sync_client=True) as client:
        crashed = False
        if dead.flow_run_id:
            try:
                state = client.read_flow_run(dead.flow_run_id).state
            except ObjectNotFound:  # a run of another Prefect server (a temporary one): nothing to close here
                state = None
            if state is not None and not state.is_final():
                msg = f"process {dead.pid} on {dead.host} was killed; closed by the next run of {cfg.name!r}"
                client.set_flow_run_state(dead.flow_run_id, Crashed(message=msg), force=True)
                crashed = True
        client.update_global_concurrency_limit(slot, GlobalConcurrencyLimitUpdate(active_slots=0))
    holder_path(cfg).unlink(missing_ok=True)
    if log:
        log.warning(
            "a killed run left the pipeline slot taken: freed it; flow run %s %s, MLflow runs %s marked KILLED",
            dead.flow_run_id, "marked Crashed" if crashed else "already final", killed or "none",
        )
    return dead


def close_mlflow_runs(cfg: PipelineConfig, flow_run_id: str | None) -> list[str]:
    """Mark the flow run's RUNNING MLflow runs (parent and nested stages, any depth) KILLED."""
    if not flow_run_id:
        return []
    client = mlflow.MlflowClient(cfg.tracking_uri())
    exp = client.get_experiment_by_name(cfg.tracking.experiment)
    if exp is None:
        return []
    ids = [exp.experiment_id]
    frontier = [r.info.run_id for r in client.search_runs(ids, f"tags.`prefect.flow_run_id` = '{flow_run_id}'")]
    killed, seen = [], set()
    while frontier:
        run_id = frontier.pop()
        if run_id in seen:
            continue
        seen.add(run_id)
        run = client.get_run(run_id)
        if run.info.status == RunStatus.to_string(RunStatus.RUNNING):
            client.set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))
            killed.append(run_id)
        frontier += [r.info.run_id for r in client.search_runs(ids, f"tags.`mlflow.parentRunId` = '{run_id}'")]
    return killed
