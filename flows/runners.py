"""The task runner a flow runs its stages on, chosen by the config's ``runner`` section, and the
one way flows fan out tasks on it (``run_all``)."""
from __future__ import annotations

from typing import Sequence

from prefect.task_runners import ThreadPoolTaskRunner

from pet_config.schema import ConfigError, PipelineConfig


def task_runner(cfg: PipelineConfig):
    """threads: this process, ``parallelism`` tasks at once. dask / ray: worker processes (see README)."""
    runner = cfg.runner
    if runner.kind == "threads":
        return ThreadPoolTaskRunner(max_workers=cfg.parallelism)
    if runner.kind == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as exc:
            raise ConfigError("runner.kind 'dask' needs prefect-dask: pip install prefect-dask") from exc
        if runner.address:
            return DaskTaskRunner(address=runner.address)
        # one single-threaded worker process per task at a time: torch in each sets its own threads
        cluster = {"n_workers": runner.workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
        return DaskTaskRunner(cluster_kwargs=cluster)
    try:
        from prefect_ray import RayTaskRunner
    except ImportError as exc:
        raise ConfigError("runner.kind 'ray' needs prefect-ray: pip install 'pet-pipeline[ray]'") from exc
    if runner.address:
        return RayTaskRunner(address=runner.address)
    return RayTaskRunner(init_kwargs={"num_cpus": runner.workers, "include_dashboard": False})


def with_runner(flow_obj, cfg: PipelineConfig):
    """``flow_obj`` running its tasks on the config's runner."""
    return flow_obj.with_options(task_runner=task_runner(cfg))


def run_all(task_obj, calls: Sequence[dict]) -> list:
    """One task run per kwargs dict, mapped on the flow's task runner; results in call order."""
    if not calls:
        return []
    # every argument is passed as a list of per-call values, so map() pairs them up call by call
    futures = task_obj.map(**{key: [c[key] for c in calls] for key in calls[0]})
    return futures.result()
