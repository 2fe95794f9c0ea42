"""The libraries' own noise (progress bars, weight-loading tables, MLflow's advice), quieted the same way for the
`pet` command and for the processes that serve, run or feed the deployments (``deployments.serve``, their flow
runs, ``deployments.watch``): an operator's log held transformers' MISSING/UNEXPECTED weights table, which the
command line never shows."""
from __future__ import annotations

import logging
import os
import sys
import warnings


def quiet_noise(verbosity: int) -> None:
    """Set before Prefect, MLflow or transformers are imported: they read these once."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", {-1: "WARNING", 0: "INFO", 1: "DEBUG"}[verbosity])
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "info" if verbosity > 0 else "error")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    # the temporary Prefect server gets longer to start on a busy machine than Prefect's default
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if not sys.stderr.isatty():  # transformers' own bars (loading weights) only on a terminal too
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # "Downloading artifacts"
    if verbosity <= 0:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # store creation, migrations
        # MLflow's advice on every registration (model card, licence, pip inference) tells a user nothing
        for name in ("mlflow", "mlflow.transformers", "mlflow.utils.requirements_utils", "mlflow.models"):
            logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module="mlflow")
