"""The operator's deployment settings, read from the environment with their defaults, in one place
for both ways of deploying (``deployments.serve`` and ``prefect deploy`` with prefect.yaml).

``python -m deployments.settings cron|timeout_hours`` prints one of them: prefect.yaml's build
steps capture it at deploy time, as ``deployments.serve`` reads it at start.
"""
from __future__ import annotations

import os
import sys
from typing import Mapping, NamedTuple

DEFAULT_CONFIG = "configs/sst2.yaml"
DEFAULT_CRON = "0 2 * * *"  # 02:00 UTC daily
DEFAULT_TIMEOUT_HOURS = 6.0


class Settings(NamedTuple):
    config_path: str  # PET_CONFIG, relative to the checkout the flows run from
    cron: str  # PET_CRON: when the scheduled pet run starts (UTC)
    timeout_hours: float  # PET_TIMEOUT_HOURS: a run still going after this long is stopped and marked failed

    @property
    def timeout_seconds(self) -> float:
        return self.timeout_hours * 3600


def settings(env: Mapping[str, str] = os.environ) -> Settings:
    raw = env.get("PET_TIMEOUT_HOURS") or str(DEFAULT_TIMEOUT_HOURS)
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not hours > 0:
        raise ValueError(f"PET_TIMEOUT_HOURS must be a positive number of hours, not {raw!r}")
    return Settings(env.get("PET_CONFIG") or DEFAULT_CONFIG, env.get("PET_CRON") or DEFAULT_CRON, hours)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("cron", "timeout_hours"):
        print("usage: python -m deployments.settings cron|timeout_hours", file=sys.stderr)
        return 2
    try:
        print(getattr(settings(), argv[0]))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
