"""The machine a benchmark ran on, named in its results: core count, CPU model and its vector extensions.

The vector extensions are named because this VM has run on CPUs with and without AVX-512 on different days, and
that alone moved fp32 matrix-product speed by 1.2-1.5x (RESULTS.md, "The CPU under the VM changes").
"""
from __future__ import annotations

import os
import platform


def cpu_features() -> list[str]:
    """The flags that decide GEMM speed: AVX / AVX-512 / AMX families, FMA, F16C."""
    flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
    return sorted(f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c"))


def vector_isa() -> str:
    """A short name for the widest vector unit: "AVX-512 (bf16, vnni, AMX)", "AVX2 only", ..."""
    flags = set(cpu_features())
    if "avx512f" in flags:
        extra = [name for flag, name in (("avx512_bf16", "bf16"), ("avx512_vnni", "vnni"), ("amx_tile", "AMX"))
                 if flag in flags]
        return "AVX-512" + (f" ({', '.join(extra)})" if extra else "")
    return "AVX2 only" if "avx2" in flags else "no AVX2"


def machine(note: str = "") -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.processor() or "?")
    return f"{os.cpu_count()}-core CPU VM ({cpu}, {vector_isa()}), no GPU" + (f", {note}" if note else "")
