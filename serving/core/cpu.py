"""What this CPU computes natively, and the dtype that serves fastest on it.

vLLM's CPU backend serves bf16 when told ``auto`` (it keeps a bf16 or fp16 checkpoint's dtype and
narrows an fp32 one to bf16: ``vllm/config/model.py::_resolve_auto_dtype``). bf16 is fast only
where the CPU computes it natively: AVX-512-bf16 or AMX-bf16 on x86, the bf16 extension on Arm,
the tests vLLM makes before it uses its own bf16 kernels
(``torch.cpu._is_avx512_bf16_supported()``, ``torch.cpu.get_capabilities()["bf16"]``). Elsewhere
fp32 is the choice: on an AVX2-only CPU (2 cores) torch's bf16 matmul ran ~30-40x slower than
fp32, and the 560M shape served plain classification at 1/1.8 of fp32's requests/s at 1 client,
1/4.8 at 16 (the benchmark's item 6).

The facts are torch's: ``torch.cpu.get_capabilities()`` (cpuinfo: the CPU's flags) and
``torch.backends.cpu.get_cpu_capability()``, the kernel set torch dispatches to. The latter
follows ``ATEN_CPU_CAPABILITY``, the way an AVX2 machine is emulated on a bigger one, so a kernel
set below AVX512 on x86 counts as no native bf16 whatever the flags say: the emulated machine gets
the dtype the real one would. (oneDNN and vLLM's own kernels read the flags, not that variable:
the emulation is partial, the choice follows it anyway.)

``choose_dtype`` is pure (facts in, choice out); ``cpu_facts`` reads torch, imported only then.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CpuFacts",
    "Dtype",
    "DtypeChoice",
    "choose_dtype",
    "cpu_facts",
    "dtype_line",
    "start_dtype",
]

Dtype = Literal["bfloat16", "float32"]
X86 = frozenset({"x86_64", "amd64", "x86", "i386", "i686"})
ARM = frozenset({"aarch64", "arm64"})
# cpuinfo's names (torch.cpu.get_capabilities()) of the native bf16 instructions.
X86_BF16 = ("avx512_bf16", "amx_bf16")
ARM_BF16 = ("bf16",)
BF16_KERNELS = "AVX512"  # the kernel set of torch's that x86 bf16 runs in


@dataclass(frozen=True)
class CpuFacts:
    """What torch knows of this CPU."""

    architecture: str
    """``x86_64``, ``aarch64`` …; empty when unknown."""
    kernels: str
    """torch's kernel set: ``AVX2``, ``AVX512``, ``DEFAULT`` … (``ATEN_CPU_CAPABILITY`` sets it)."""
    bf16: tuple[str, ...] = ()
    """The native bf16 flags the CPU has, of ``X86_BF16`` and ``ARM_BF16``."""

    def __str__(self) -> str:
        arch = self.architecture or "unknown CPU"
        native = f"native bf16 ({', '.join(self.bf16)})" if self.bf16 else "no native bf16"
        return f"{arch} {self.kernels}, {native}"


@dataclass(frozen=True)
class DtypeChoice:
    """The dtype to serve in on this CPU, and why (a clause for people)."""

    dtype: Dtype
    reason: str


def choose_dtype(facts: CpuFacts) -> DtypeChoice:
    """bf16 where the CPU computes it natively and torch uses its kernels for it; else fp32."""
    if facts.architecture in X86:
        if not facts.bf16:
            reason = f"this CPU has {facts.kernels} but no native bf16 (AVX-512-bf16/AMX)"
            return DtypeChoice("float32", reason)
        if facts.kernels != BF16_KERNELS:
            reason = (
                f"this CPU has native bf16 ({', '.join(facts.bf16)}) but torch runs its "
                f"{facts.kernels} kernels (ATEN_CPU_CAPABILITY)"
            )
            return DtypeChoice("float32", reason)
        return DtypeChoice("bfloat16", f"this CPU has native bf16 ({', '.join(facts.bf16)})")
    if facts.architecture in ARM:
        if facts.bf16:
            return DtypeChoice("bfloat16", "this Arm CPU has native bf16")
        return DtypeChoice("float32", "this Arm CPU has no native bf16")
    return DtypeChoice("float32", f"no native bf16 known for {facts.architecture or 'this CPU'}")


def dtype_line(given: str | None, choice: DtypeChoice) -> str:
    """The start-up line: the dtype served and why (``given``: the user's ``--dtype``)."""
    if given is None:
        return f"seqgpt: dtype {choice.dtype}: {choice.reason}; pass --dtype to choose"
    return f"seqgpt: dtype {given}: as --dtype asks (else {choice.dtype}: {choice.reason})"


def start_dtype(device: str, given: str | None, facts: CpuFacts) -> tuple[Dtype | None, str]:
    """The ``--dtype`` to add (None: add none) and the start-up line ("": say nothing).

    On vLLM's CPU backend a ``--dtype`` the user gave (``given``, any value vLLM takes, ``auto``
    too) stands and the line says what the CPU would get; otherwise the CPU's choice is added.
    On any other device vLLM's own choice stands, unsaid."""
    if device != "cpu":
        return None, ""
    choice = choose_dtype(facts)
    return (choice.dtype if given is None else None), dtype_line(given, choice)


def cpu_facts() -> CpuFacts:
    """This CPU as torch sees it (imports torch)."""
    # torch: seconds to import; `import serving` stays light (test_public_api).
    import torch

    capabilities = torch.cpu.get_capabilities()
    architecture = str(capabilities.get("architecture") or platform.machine()).lower()
    flags = tuple(flag for flag in (*X86_BF16, *ARM_BF16) if capabilities.get(flag) is True)
    return CpuFacts(architecture, torch.backends.cpu.get_cpu_capability(), flags)
