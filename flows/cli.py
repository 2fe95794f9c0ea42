"""Command line: ``pet run|relabel|search|validate|lineage CONFIG``, ``pet predict CONFIG FILE`` and ``pet models list|install`` (see ``pet --help``)."""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys

import yaml

from flows.quiet import quiet_noise


def _user_errors() -> tuple:
    from pet_config.schema import ConfigError
    from pet_io.sources import DataValidationError
    from prompt_models.patterns import PatternError
    from prompt_models.soft_prompts import SoftPromptError
    from prompt_models.verbalizer import VerbalizerError

    from flows.lineage import LineageError
    from prompt_models.adapters import AdapterError
    from prompt_models.backbones import BackboneError
    from pet_zoo.registry import ModelInstallError

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
    from pet_config.schema import ConfigError

    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {k.strip()}: the value {v!r} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return out


class OneLineErrors(argparse.ArgumentParser):
    """A bad flag or value is one line naming it, exit code 2, as every other input error of `pet` (argparse
    prints its whole usage block first); ``--help`` still shows the usage."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrors(prog="pet", description="PET / LM-BFF prompt-based few-shot pipeline")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str):
        p = sub.add_parser(name, help=help)
        p.add_argument("config")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (dotted path)")
        loud = p.add_mutually_exclusive_group()
        loud.add_argument("-q", "--quiet", action="store_true", help="warnings, errors and the final summary only")
        loud.add_argument("-v", "--verbose", action="store_true", help="debug logs and the libraries' own warnings")
        p.add_argument("--json", action="store_true", help="print the full result as JSON instead of a one-line summary")
        return p

    command("run", "run the pet flow: train pattern models, soft-label, distill, register")
    p_rel = command("relabel", "soft-label only new unlabeled data with the existing ensemble and re-distill")
    p_rel.add_argument("--unlabeled", help="file with the new unlabeled texts (default: the config's data.unlabeled)")
    command("validate", "check the config and every data file without training; writes nothing")
    p_lin = command("lineage", "show the registered champion's flow run, datasets and stage runs; writes nothing")
    p_lin.add_argument("--alias", help="registry alias (default: tracking.alias, e.g. champion)")
    command("search", "LM-BFF template and/or label-word search only")
    from flows.models_cli import add_models_parser, models_command

    add_models_parser(sub)
    from flows.init_cmd import add_init_parser, init_command

    add_init_parser(sub)
    from flows.predict import add_predict_parser, predict_command

    add_predict_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "models":
        return models_command(args)
    if args.command == "init":
        quiet_noise(0)  # `datasets` reads the unlabeled file: no progress bars off a terminal
        return init_command(args)
    quiet_noise(-1 if args.quiet else 1 if args.verbose else 0)
    if args.command == "predict":
        return predict_command(args)
    errors = _user_errors()
    from prompt_models.training import StopRequested

    try:
        overrides = parse_overrides(args.set)
        from pet_config.loading import load_config
        from pet_zoo.resolve import resolve_models

        # check the config before a flow (and a Prefect server) starts: bad input fails fast;
        # only the commands that run models install a missing zoo model (`pet validate` writes nothing)
        cfg = resolve_models(load_config(args.config, overrides), install=args.command in ("run", "relabel", "search"))
        cfg = cfg.validate()
        if args.command == "validate":
            from tasks.data_tasks import read_splits

            splits = read_splits(cfg)  # a scratch Arrow cache: validate writes nothing
            counts = {k: {"n": len(ex), "source": spec.path} for k, (spec, ex) in splits.items()}
            print(json.dumps(counts, indent=2) if args.json else "validate ok: " + ", ".join(
                f"{k} {c['n']} row{'' if c['n'] == 1 else 's'} ({_shown(c['source'])})" for k, c in counts.items()) + f"; labels {cfg.labels}")
            return 0
        if args.command in ("run", "relabel", "search"):
            _preflight(args, cfg)
        if args.command == "lineage":
            from flows.lineage import champion_lineage, lineage_lines

            lineage = champion_lineage(cfg, args.alias)
            print(json.dumps(lineage, indent=2, default=str) if args.json else lineage_lines(lineage))
            return 0
        result = _run_flow(args, cfg, overrides)
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, StopRequested):
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
    print(json.dumps(result, indent=2, default=str) if args.json else summary_line(args.command, cfg, result))
    return 0


def _preflight(args, cfg) -> None:
    """Everything a flow would refuse, refused before it (and a Prefect server) starts, leaving
    nothing behind: the ensemble relabel needs, work_dir, and every data file (relabel's new one
    included). The unlabeled split's Arrow cache is kept in work_dir, where the flow's own read
    then finds it instead of converting again; a refused file's cache is removed."""
    from pet_config.schema import ConfigError
    from pet_io.atomic import removed_on_error, writable_problem
    from tasks.data_tasks import read_splits

    if args.command == "search":
        from flows.search_flows import check_search_config

        check_search_config(cfg)
    if args.command == "run" and cfg.data.unlabeled is None:
        raise ConfigError("pet run needs data.unlabeled: the ensemble soft-labels it for distillation")
    if args.command == "relabel":
        from flows.common import read_manifest

        read_manifest(cfg)  # reads only: no ensemble, nothing to relabel with
        if args.unlabeled:
            cfg = cfg.with_unlabeled(args.unlabeled)
        if cfg.data.unlabeled is None:
            raise ConfigError("relabel needs new unlabeled data: pass --unlabeled FILE or set data.unlabeled")
    problem = writable_problem(cfg.work_path)
    if problem:
        raise ConfigError(f"work_dir {cfg.work_path} cannot be written: {problem}")
    with removed_on_error(cfg.work_path / "arrow_cache"):
        read_splits(cfg, cfg.work_path / "arrow_cache")
        if args.command in ("run", "relabel"):
            from flows.lineage import check_champion_labels

            # after the data: a typo in `labels` is named by the data check, not taken for another task
            check_champion_labels(cfg)


def _run_flow(args, cfg, overrides: dict) -> dict:
    from flows.local_server import prefect_api
    from flows.runners import with_runner

    signal.signal(signal.SIGINT, _stop_everywhere)
    # `timeout`, `kill` and service managers send SIGTERM: the same stop and line as Ctrl-C (Prefect marks
    # the run Crashed first, then hands the signal on to this handler)
    signal.signal(signal.SIGTERM, _stop_everywhere)
    logging.getLogger("prefect.task_runs").addFilter(_no_traceback_for_a_stop)
    from prompt_models.training import STOP

    STOP.clear()  # a stop asked of an earlier run in this process is not one asked of this run
    with prefect_api():
        if args.command == "run":
            from flows.pet_flow import pet_flow

            return with_runner(pet_flow, cfg)(args.config, overrides)
        if args.command == "relabel":
            from flows.pet_flow import relabel_flow

            return with_runner(relabel_flow, cfg)(args.config, args.unlabeled, overrides)
        from flows.search_flows import search_flow

        return with_runner(search_flow, cfg)(args.config, overrides)


def _stop_everywhere(signum, frame) -> None:
    """Ctrl-C or SIGTERM: task threads stop at their next training or inference step; this thread unwinds now."""
    from prompt_models.training import STOP

    STOP.set()
    signal.default_int_handler(signum, frame)


def _no_traceback_for_a_stop(record: logging.LogRecord) -> bool:
    """A task stopped by Ctrl-C logs one line, not a traceback through torch."""
    from prompt_models.training import StopRequested

    if record.exc_info and isinstance(record.exc_info[1], StopRequested):
        record.exc_info, record.exc_text = None, None
    return True


def _shown(path: str) -> str:
    """A path as the user would type it from here: relative below the current folder."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    except ValueError:
        return path


def summary_line(command: str, cfg, result: dict) -> str:
    """What a person reads at the end: one line with the accuracies, the registered version and alias and
    where to look, then one line per warning."""
    uri = cfg.tracking_uri()
    if uri.startswith("sqlite:///"):
        uri = "sqlite:///" + _shown(uri[len("sqlite:///"):])
    where = f"results in {_shown(str(cfg.work_path))} (mlflow ui --backend-store-uri {shlex.quote(uri)})"
    if command == "search":
        best = {k: v for k, v in result.items() if k in ("label_words", "templates", "best_template")}
        return f"search done: {json.dumps(best, default=str)[:300]}; {where}"
    parts = []
    ens = result.get("ensemble_metrics") or {}
    clf = result.get("classifier_metrics") or {}
    for name, metrics in (("ensemble", ens), ("classifier", clf)):
        acc = ", ".join(f"{k.split('_')[0]} {metrics[k]:.3f}" for k in ("dev_accuracy", "test_accuracy") if k in metrics)
        if acc:
            parts.append(f"{name} accuracy {acc}")
    if result.get("registered") and not parts:  # said, not left out: a user reads missing numbers as a failure
        parts.append("no accuracy measured (no dev or test set; with neither, each run's classifier is promoted "
                     "unchecked: give data.dev or data.test)")
    zs = result.get("zero_shot_calibrated") or {}
    if zs.get("metrics"):
        acc = ", ".join(f"{k.split('_')[0]} {zs['metrics'][k]:.3f}" for k in ("dev_accuracy", "test_accuracy")
                        if k in zs["metrics"])
        parts.append(f"calibrated zero-shot {acc}" + ("" if zs["ensemble_beats"] else
                     f" (the trained ensemble does NOT beat it on {zs['split']})"))
    warnings = [f"{line} (its accuracy is optimistic)" for line in result.get("split_overlaps") or []]
    warnings += result.get("quality_warnings") or []
    if command == "relabel":
        parts.insert(0, f"{result.get('n_new', 0)} new texts soft-labeled")
    reg = result.get("registered")
    if reg:
        same = " (the same classifier as before)" if reg.get("reused") else ""
        parts.append(f"registered {reg['name']} v{reg['version']}{same} as {reg['alias']!r}")
    elif command == "relabel":
        parts.append("nothing new: the registered classifier stays")
    # the result stays one line however many warnings there are; each warning gets a line of its own
    return "\n".join([f"{command} done: " + "; ".join(parts) + f"; {where}"] + [f"  WARNING {w}" for w in warnings])


def entry() -> None:
    """The ``pet`` console script."""
    try:
        code = main()
    except BrokenPipeError:  # `pet lineage ... | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    if code == 130:
        # a task thread may still be inside a training step: do not wait for it at exit (Ctrl-C
        # means now); the MLflow runs are closed and the temporary server is stopped already
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
