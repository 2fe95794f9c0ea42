"""Deploy-time check run by ``prefect deploy`` (a build step in prefect.yaml): refuse to deploy a
pipeline whose worker could not find its code or config later.

PET_REPO_DIR must name this checkout (the worker's pull step changes into it) and PET_CONFIG a
pipeline config inside it (relative to it, or absolute), which must pass `pet validate`'s config checks;
PET_TIMEOUT_HOURS, when set, must be a positive number.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from deployments.settings import settings


def problems(env=os.environ) -> list[str]:
    repo, config = env.get("PET_REPO_DIR"), env.get("PET_CONFIG")
    out = []
    if not repo:
        out.append("PET_REPO_DIR is not set: export it as the checkout the worker runs the flows from")
    elif not (Path(repo) / "flows" / "pet_flow.py").is_file():
        out.append(f"PET_REPO_DIR={repo!r} is not a checkout of this pipeline (no flows/pet_flow.py)")
    if not config:
        out.append("PET_CONFIG is not set: export the pipeline config to deploy, e.g. configs/sst2.yaml")
    elif repo:
        path = Path(config) if Path(config).is_absolute() else Path(repo) / config
        if not path.is_file():
            out.append(f"PET_CONFIG={config!r}: no such file under {repo}")
        else:
            from pet_config.schema import ConfigError
            from pet_config.loading import load_config

            try:
                load_config(path)
            except ConfigError as exc:
                out.append(f"PET_CONFIG={config!r}: {exc}")
    try:
        settings(env)
    except ValueError as exc:
        out.append(str(exc))
    return out


def main() -> int:
    found = problems()
    for p in found:
        print(f"error: {p}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
