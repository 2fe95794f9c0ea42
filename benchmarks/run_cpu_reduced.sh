#!/usr/bin/env bash
# The reduced CPU run behind benchmarks/RESULTS.md (2-core machine, no GPU lent): one split seed,
# 300 test rows per task, 500 unlabeled texts. Each line resumes from results_rows.jsonl.
# The full run (5 seeds, whole test sets) is the default of pet_effect.py, meant for a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE
py=.venv/bin/python
common=(--seeds 13 --test-limit 300 --unlabeled 500)
$py benchmarks/pet_effect.py --backbones smollm2-135m-instruct --tasks SST-2 "${common[@]}"
$py benchmarks/pet_effect.py --backbones splade-tiny --tasks SST-2 mr trec "${common[@]}"
$py benchmarks/pet_effect.py --backbones smollm2-135m-instruct --tasks mr "${common[@]}"
$py benchmarks/pet_effect.py --backbones gemma-3-270m --tasks SST-2 "${common[@]}" --methods finetune pet pet_ensemble distilled
$py benchmarks/pet_effect.py --backbones smollm2-135m-instruct --tasks trec "${common[@]}"
