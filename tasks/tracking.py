"""MLflow helpers: one experiment per config, a parent run per flow run, nested runs per stage."""
from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Sequence

import mlflow
import pandas as pd

from pet_config.schema import PipelineConfig
from pet_io.example_files import examples_to_frame
from prompt_models.examples import InputExample
from prompt_models.training import check_stop


def setup(cfg: PipelineConfig) -> str:
    """Point MLflow at the config's store; create the experiment with artifacts under work_dir."""
    mlflow.set_tracking_uri(cfg.tracking_uri())
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(cfg.tracking.experiment)
    if exp is None:
        artifacts = None
        if cfg.tracking_uri().startswith("sqlite:"):
            artifacts = (cfg.work_path / "mlartifacts").resolve().as_uri()
        exp_id = client.create_experiment(cfg.tracking.experiment, artifact_location=artifacts)
    else:
        exp_id = exp.experiment_id
    return exp_id


@contextlib.contextmanager
def stage_run(cfg: PipelineConfig, parent_run_id: str | None, name: str, tags: dict | None = None):
    """A nested run under the flow's parent run, safe to open from any task thread. After a stop
    request (Ctrl-C) no stage starts: a task queued behind the interrupted one would otherwise open
    its run, fail at its first step and leave a FAILED run behind."""
    check_stop()
    exp_id = setup(cfg)
    with mlflow.start_run(
        experiment_id=exp_id,
        run_name=name,
        nested=parent_run_id is not None,
        parent_run_id=parent_run_id,
        # which process ran it: a Dask or Ray worker, or the flow's own process
        tags={"stage": name, "worker": f"{socket.gethostname()}:{os.getpid()}", **(tags or {})},
    ) as run:
        yield run


def local_source(path: str):
    """MLflow's dataset source for a local file (a class MLflow builds at import, found by name)."""
    from mlflow.data.dataset_source_registry import get_registered_sources

    source_cls = next(s for s in get_registered_sources() if s.__name__ == "LocalArtifactDatasetSource")
    return source_cls(str(path))


def log_examples_input(examples: Sequence[InputExample], name: str, source: str, context: str, digest: str) -> None:
    """Dataset lineage: the examples as an MLflow dataset input of the active run."""
    df = examples_to_frame(examples) if examples else pd.DataFrame(columns=["text_a", "text_b", "label", "guid"])
    ds = mlflow.data.from_pandas(df, source=local_source(source), name=name, digest=digest[:36])
    mlflow.log_input(ds, context=context)


def log_dataset_reference(name: str, source: str, digest: str, n: int) -> None:
    """Dataset lineage without the rows: source, digest and row count as an MLflow input."""
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.types.schema import ColSpec, Schema

    ds = MetaDataset(local_source(source), name=name, digest=digest[:36], schema=Schema([ColSpec("string", "text_a")]))
    mlflow.log_input(ds, context=name, tags={"rows": str(n)})


def log_params_flat(params: dict, prefix: str = "") -> None:
    flat = {}

    def walk(d, pre):
        for k, v in d.items():
            key = f"{pre}{k}"
            if isinstance(v, dict):
                walk(v, key + ".")
            else:
                flat[key] = str(v)[:500]

    walk(params, prefix)
    mlflow.log_params(flat)




def transient_error(task, task_run, state) -> bool:
    """Prefect retry condition: retry what a busy store, server or disk causes, never a bad input."""
    exc = state.result(raise_on_failure=False)
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, PermissionError)):
        return False
    return isinstance(exc, (OSError, TimeoutError, ConnectionError, mlflow.exceptions.MlflowException))


# tasks that touch the MLflow store or the filesystem (not the long training ones)
STORE_RETRIES = dict(retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=transient_error)


# a progress line at most this often: a pattern model or the distillation ran 9-17 minutes on long reviews with
# nothing in the log (a new-user trial on IMDB), and tqdm's bar shows only on a terminal
PROGRESS_EVERY_S = 60.0


def step_logger(what: str, total_steps: int, key: str, log, clock=time.perf_counter):
    """``training.train_steps``' ``log_fn``: each logged step's metrics to MLflow, and at most every
    ``PROGRESS_EVERY_S`` a line on ``log`` (the run's logger) such as
    ``distill: step 120 of 300 (distill_loss 0.412), 3.3 s a step, about 10 min left``. The clock starts at the
    loop's own step 0 (metrics with ``key``): model loading and another loop before it (SetFit's pairs) do not count."""
    started = last = None

    def log_fn(metrics: dict, step: int) -> None:
        nonlocal started, last
        mlflow.log_metrics(metrics, step=step)
        if key not in metrics:
            return
        now = clock()
        if started is None or step == 0:
            started = last = now
            return
        if now - last < PROGRESS_EVERY_S:
            return
        last = now
        per_step = (now - started) / step  # steps 1..step ran since step 0 was logged
        left = per_step * (total_steps - 1 - step)
        log.info("%s: step %d of %d (%s %.3f), %s s a step, about %s left", what, step + 1, total_steps, key,
                 metrics[key], f"{per_step:.1f}" if per_step >= 1 else f"{per_step:.2f}", time_left(left))

    return log_fn


def time_left(seconds: float) -> str:
    """``12 min`` or ``40 s``: the remaining time in a progress line."""
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def texts_logger(what: str, total: int, log, clock=time.perf_counter):
    """A progress line on ``log`` at most every ``PROGRESS_EVERY_S`` while ``total`` texts are labeled, such as
    ``labeling with pattern model 3f2a...: 2,000 of 7,695 texts, 12.8 texts/s, about 7 min left``; call it with
    the texts done so far. Labeling a large pool took 6 silent minutes per model before (a new-user trial)."""
    started = last = clock()

    def progress(done: int) -> None:
        nonlocal last
        now = clock()
        if now - last < PROGRESS_EVERY_S or done >= total or done == 0:
            return
        last = now
        rate = done / (now - started)
        log.info("%s: %s of %s texts, %.1f texts/s, about %s left", what, f"{done:,}", f"{total:,}", rate,
                 time_left((total - done) / rate))

    return progress
