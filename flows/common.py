"""Pieces shared by the flows: config loading, the pipeline slot, the parent MLflow run, manifests."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from pathlib import Path

import mlflow
from prefect import get_client
from prefect.concurrency.asyncio import AcquireConcurrencySlotTimeoutError
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, TerminationSignal
from prefect.runtime import flow_run

from pet_config.loading import load_config
from pet_config.schema import PipelineConfig
from pet_io.atomic import is_done, temp_beside, write_json_atomic
from pet_zoo.resolve import resolve_models
from prompt_models.training import STOP
from tasks import tracking
from tasks.records import EnsembleManifest

from . import recovery


def resolve_config(config: str | PipelineConfig, overrides: dict | None = None) -> PipelineConfig:
    cfg = config if isinstance(config, PipelineConfig) else load_config(config, overrides)
    cfg = resolve_models(cfg).validate()
    # named outright: task workers in other processes (Dask, Ray) must not fall back on their own
    # environment's MLFLOW_TRACKING_URI
    cfg.tracking.tracking_uri = cfg.tracking_uri()
    return cfg


def current_flow_run_id() -> str | None:
    try:
        return flow_run.id
    except Exception:
        return None


SLOT_POLL_SECONDS = 30.0


class _SlotTimeoutNoise(logging.Filter):
    """Prefect logs each timed-out slot request as an ERROR of its acquisition service; here a
    timeout is only the end of one polling round (see ``pipeline_slot``), not a failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (len(args) >= 2 and "ConcurrencySlotAcquisition" in str(args[0]) and "TimeoutError" in str(args[1]))


def slot_name(cfg: PipelineConfig) -> str:
    """A pipeline is its name *and* its work folder: the folder holds its caches, manifest and the
    record of who holds the slot. Keyed by the name alone, a run killed in one folder left a slot
    that no run in another folder could see to free (temporary servers keep their leases in memory,
    so nothing expires it), and two unrelated projects that kept a config's name waited on each other."""
    return f"pet-pipeline-{cfg.name}-{folder_id(cfg.work_path)}"


def folder_id(work: Path) -> str:
    """A random id kept in the work folder (``runs/folder.id``), made by the first run: hosts that
    mount a shared work folder at different paths still agree on it, as a hash of the path would not."""
    path = work / "runs" / "folder.id"
    if not path.exists():
        with temp_beside(path) as tmp, contextlib.suppress(FileExistsError):
            tmp.write_text(uuid.uuid4().hex[:8])
            os.link(tmp, path)  # the first run to get here sets it; later ones read the same id
    return path.read_text().strip()


@contextlib.contextmanager
def pipeline_slot(cfg: PipelineConfig, log=None):
    """One run of a pipeline (config ``name`` in one work folder) at a time, across processes and workers.

    A Prefect global concurrency limit of 1 named after the pipeline (``slot_name``): a second pet or relabel run
    of the same pipeline waits for the first to finish, then finds its work cached, instead of
    training the same models and registering the same classifier at the same time. A run through another Prefect
    server (a command run without PREFECT_API_URL starts a temporary one) takes no slot of this server's limit:
    the holder it records in the work folder makes this run wait for it all the same.
    """
    name = slot_name(cfg)
    with get_client(sync_client=True) as client:
        try:
            client.upsert_global_concurrency_limit_by_name(name, 1)
        except ObjectAlreadyExists:  # created by a run starting at the same moment
            pass
    if log:
        log.info("taking the pipeline slot %r (one run of a pipeline at a time)", name)
    me = recovery.SlotHolder.me(current_flow_run_id())
    noise = logging.getLogger("prefect._internal.concurrency")
    quiet = _SlotTimeoutNoise()
    noise.addFilter(quiet)
    with contextlib.ExitStack() as held:
        held.callback(noise.removeFilter, quiet)
        told = False
        while True:
            with recovery.local_lock(cfg):
                recovery.recover_dead_holder(cfg, name, log)
                other = recovery.held_elsewhere(cfg, me)
                if other is None:
                    try:
                        # the slot is a lease the engine renews while the run lives; a missed renewal
                        # (a busy server) must not stop hours of training
                        held.enter_context(concurrency(name, occupy=1, strict=True, timeout_seconds=SLOT_POLL_SECONDS,
                                                       raise_on_lease_renewal_failure=False))
                    except AcquireConcurrencySlotTimeoutError:
                        if log and not told:  # said once, and only when there is a wait
                            log.info("the pipeline slot %r is held by another run of this pipeline: waiting for it "
                                     "to finish", name)
                        told = True
                        continue  # look again: the holder may have been killed meanwhile
                    recovery.write_holder(cfg, me)
                    break
            if log and not told:
                log.info("the pipeline is held by process %s (flow run %s) through another Prefect server; waiting "
                         "for it (export PREFECT_API_URL in every shell so that all runs share one server)",
                         other.pid, other.flow_run_id)
            told = True
            time.sleep(SLOT_POLL_SECONDS)
        try:
            yield
        finally:
            recovery.clear_holder(cfg, me)


@contextlib.contextmanager
def parent_run(cfg: PipelineConfig, flow_name: str):
    """The one MLflow run of a flow run, tagged with the Prefect flow run id."""
    exp_id = tracking.setup(cfg)
    fr_id = current_flow_run_id()
    fr_name = None
    try:
        fr_name = flow_run.name
    except Exception:
        pass
    tags = {"prefect.flow_run_id": str(fr_id), "prefect.flow_name": flow_name, "pipeline": cfg.name}
    with mlflow.start_run(experiment_id=exp_id, run_name=f"{flow_name}-{fr_name or int(time.time())}", tags=tags) as run:
        mlflow.log_dict(cfg.to_dict(), "config.json")
        tracking.log_params_flat(
            {"name": cfg.name, "model": cfg.model.path, "patterns": "|".join(cfg.patterns), "seeds": cfg.seeds}
        )
        try:
            yield run
        except TerminationSignal:
            # SIGTERM reaches this thread as Prefect's TerminationSignal; the flow's task runner then waits for
            # its worker threads, and only after that is the signal handed on to the CLI's handler that sets
            # STOP. Set here, before that wait, a training thread stops at its next step, not at its unit's end
            STOP.set()
            raise


def manifest_path(cfg: PipelineConfig) -> Path:
    return cfg.work_path / "ensembles" / f"{cfg.name}.json"


def write_manifest(cfg: PipelineConfig, manifest: EnsembleManifest) -> Path:
    path = manifest_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, manifest.to_dict())


def read_manifest(cfg: PipelineConfig) -> EnsembleManifest:
    path = manifest_path(cfg)
    if not path.exists():
        raise FileNotFoundError(
            f"no trained ensemble named {cfg.name!r} under {cfg.work_path}: run the pet flow (`pet run`) first"
        )
    try:
        info = json.loads(path.read_text())
        manifest = EnsembleManifest.from_dict(info, cfg.pet.ensemble_weighting, cfg.pet.temperature)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not an ensemble manifest this version can read ({exc!r}); rerun `pet run`") from exc
    missing = [m.path for m in manifest.models if not is_done(m.path)]
    if missing:
        raise FileNotFoundError(f"the ensemble {cfg.name!r} lists pattern models that are gone: {missing}")
    return manifest
