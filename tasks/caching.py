"""Content-digest cache keys shared by all tasks.

A unit of work lives in a folder named by the digest of everything that determines its result: the
model's bytes (``pet_io.digests.model_digest``), the data's content, the template, verbalizer,
hyper-parameters and seed. Publishing and the ``done.json`` markers are in ``pet_io.atomic``.
"""
from __future__ import annotations

import dataclasses


def train_cfg_key(train_cfg) -> dict:
    """The training settings that change a result (progress bars and eval batch size do not),
    taken from the core ``TrainConfig`` a stage trains with (``pet_config.training``)."""
    d = dataclasses.asdict(train_cfg.core() if hasattr(train_cfg, "core") else train_cfg)
    d.pop("progress", None)
    d.pop("eval_batch_size", None)
    return d
