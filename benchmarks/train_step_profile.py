"""Where a pattern model's training step goes on this CPU: forward, backward, clipping, and the AdamW step,
with torch's three AdamW implementations (for-loop, the CPU default; foreach; fused) timed on the same gradients.

One batch of 8 trec questions (split seed 13, the question template `pet init` picks for them) through the
pipeline's own PETModel and loss, for each backbone. The optimizer variants are timed interleaved on one set
of gradients (best of ``--repeats``), so machine noise hits them alike; each keeps its own state. Their
numerical agreement is checked too: the parameters after 3 steps of each from the same start.

    .venv/bin/python benchmarks/train_step_profile.py --backbones smollm2-135m-instruct gemma-3-270m
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostinfo import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared" / "data" / "lmbff_kshot" / "trec" / "16-13" / "train.csv"
TEMPLATE = "Question: {text_a} Type of answer: {mask}"
WORDS = {"0": ["description"], "1": ["entity"], "2": ["abbreviation"], "3": ["human"], "4": ["location"], "5": ["number"]}
OUT = ROOT / "benchmarks" / "train_step_profile_results.json"


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def profile(backbone: str, steps: int, repeats: int, freeze_embeddings: bool = False) -> dict:
    import pandas as pd
    import torch.nn.functional as F

    from pet_zoo.install import resolve_model_path
    from prompt_models.examples import InputExample
    from prompt_models.pet import PETModel
    from prompt_models.training import configure_threads

    configure_threads()
    df = pd.read_csv(TRAIN, header=None, dtype=str)
    examples = [InputExample(text_a=t, label=lab) for lab, t in zip(df[0], df[1])][::12][:8]
    model = PETModel.from_pretrained(resolve_model_path(backbone, None, auto_install=False), TEMPLATE, WORDS, 64)
    model.train()
    if freeze_embeddings:  # the input embeddings, and the LM head where it is tied to them (SmolLM2, Gemma)
        model.model.get_input_embeddings().weight.requires_grad_(False)
    batch = model.collate(model.encode(examples))
    targets = torch.tensor(model.gold(examples))
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)
    emb = model.model.get_input_embeddings().weight.numel()

    def loss_of():
        return F.cross_entropy(model.forward(batch), targets)

    phases = {"forward": [], "backward": [], "clip": []}
    for _ in range(steps):
        for p in params:
            p.grad = None
        holder = {}
        phases["forward"].append(_timed(lambda: holder.update(loss=loss_of())))
        phases["backward"].append(_timed(lambda: holder["loss"].backward()))
        phases["clip"].append(_timed(lambda: torch.nn.utils.clip_grad_norm_(params, 1.0)))

    start = [p.detach().clone() for p in params]
    variants = {"for-loop (default on CPU)": dict(foreach=False), "foreach": dict(foreach=True), "fused": dict(fused=True)}
    after = {}
    for name, kw in variants.items():  # agreement: 3 steps of each from the same start, on the same gradients
        with torch.no_grad():
            for p, s in zip(params, start):
                p.copy_(s)
        opt = torch.optim.AdamW(params, lr=3e-5, weight_decay=0.01, **kw)
        for _ in range(3):
            opt.step()
        after[name] = [p.detach().clone() for p in params[:: max(1, len(params) // 20)]]
    ref = after["for-loop (default on CPU)"]
    agreement = {name: max(float((a - b).abs().max()) for a, b in zip(ps, ref)) for name, ps in after.items()}
    del after, ref
    opts = {name: torch.optim.AdamW(params, lr=3e-5, weight_decay=0.01, **kw) for name, kw in variants.items()}
    for opt in opts.values():
        opt.step()  # the state (exp_avg, exp_avg_sq) is made on the first step: not timed
    step_s = {name: [] for name in opts}
    for _ in range(repeats):
        for name, opt in opts.items():
            step_s[name].append(_timed(opt.step))
    best = {k: min(v) for k, v in phases.items()}
    return {"backbone": backbone, "freeze_embeddings": freeze_embeddings, "trainable_params": n_params, "embedding_params": emb,
            "batch": list(batch["input_ids"].shape), "phase_s_best": best,
            "phase_s_all": phases, "adamw_step_s_best": {k: min(v) for k, v in step_s.items()},
            "adamw_step_s_all": step_s, "adamw_max_abs_param_diff_vs_default_after_3_steps": agreement}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="+", default=["smollm2-135m-instruct", "gemma-3-270m"])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--freeze-embeddings", action="store_true", help="also profile with the embeddings frozen")
    ap.add_argument("--load-note", default="", help="what else ran on the machine")
    args = ap.parse_args()
    res = {"machine": machine(args.load_note), "rows": []}
    for b in args.backbones:
        for frozen in [False, True] if args.freeze_embeddings else [False]:
            row = profile(b, args.steps, args.repeats, frozen)
            res["rows"].append(row)
            print(json.dumps({k: v for k, v in row.items() if not k.endswith("_all")}, indent=1), flush=True)
    OUT.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
