"""The dtype each CPU gets: bf16 only where it is native and torch uses the kernels for it; a
user's ``--dtype`` always stands; devices other than the CPU keep vLLM's choice."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from serving.core.cpu import CpuFacts, choose_dtype, cpu_facts, dtype_line, start_dtype

AVX2 = CpuFacts("x86_64", "AVX2")
AVX512 = CpuFacts("x86_64", "AVX512")
AVX512_BF16 = CpuFacts("x86_64", "AVX512", ("avx512_bf16",))
AMX = CpuFacts("x86_64", "AVX512", ("avx512_bf16", "amx_bf16"))


@pytest.mark.parametrize(
    ("facts", "dtype", "reason"),
    [
        (AVX2, "float32", "this CPU has AVX2 but no native bf16 (AVX-512-bf16/AMX)"),
        (AVX512, "float32", "this CPU has AVX512 but no native bf16 (AVX-512-bf16/AMX)"),
        (AVX512_BF16, "bfloat16", "this CPU has native bf16 (avx512_bf16)"),
        (AMX, "bfloat16", "this CPU has native bf16 (avx512_bf16, amx_bf16)"),
        (CpuFacts("x86_64", "AVX512", ("amx_bf16",)), "bfloat16", "native bf16 (amx_bf16)"),
        # ATEN_CPU_CAPABILITY=avx2 on a bf16 machine: served as the machine it emulates.
        (
            CpuFacts("x86_64", "AVX2", ("avx512_bf16", "amx_bf16")),
            "float32",
            "native bf16 (avx512_bf16, amx_bf16) but torch runs its AVX2 kernels",
        ),
        (CpuFacts("x86_64", "DEFAULT", ("avx512_bf16",)), "float32", "its DEFAULT kernels"),
        (CpuFacts("aarch64", "SVE256", ("bf16",)), "bfloat16", "this Arm CPU has native bf16"),
        (CpuFacts("arm64", "DEFAULT"), "float32", "this Arm CPU has no native bf16"),
        (CpuFacts("ppc64le", "VSX"), "float32", "no native bf16 known for ppc64le"),
        (CpuFacts("", "DEFAULT"), "float32", "no native bf16 known for this CPU"),
    ],
)
def test_each_cpu_gets_bf16_only_where_it_is_native(
    facts: CpuFacts, dtype: str, reason: str
) -> None:
    choice = choose_dtype(facts)
    assert choice.dtype == dtype
    assert reason in choice.reason


def test_without_a_given_dtype_the_cpu_backend_gets_the_cpus_choice_and_says_why() -> None:
    assert start_dtype("cpu", None, AVX2) == (
        "float32",
        "seqgpt: dtype float32: this CPU has AVX2 but no native bf16 (AVX-512-bf16/AMX); "
        "pass --dtype to choose",
    )
    assert start_dtype("cpu", None, AMX)[0] == "bfloat16"


@pytest.mark.parametrize("given", ["auto", "half", "float16", "bfloat16", "float", "float32"])
def test_a_given_dtype_stands_and_the_line_says_what_the_cpu_would_get(given: str) -> None:
    added, line = start_dtype("cpu", given, AVX2)
    assert added is None
    assert line == (
        f"seqgpt: dtype {given}: as --dtype asks (else float32: this CPU has AVX2 but no "
        "native bf16 (AVX-512-bf16/AMX))"
    )


@pytest.mark.parametrize("given", [None, "bfloat16"])
@pytest.mark.parametrize("device", ["cuda", "rocm", "xpu", "tpu"])
def test_other_devices_keep_vllms_choice_unsaid(device: str, given: str | None) -> None:
    assert start_dtype(device, given, AVX2) == (None, "")


def test_the_line_of_a_choice_names_the_dtype_and_the_reason() -> None:
    assert dtype_line(None, choose_dtype(AVX512_BF16)) == (
        "seqgpt: dtype bfloat16: this CPU has native bf16 (avx512_bf16); pass --dtype to choose"
    )


def test_the_facts_read_as_one_phrase() -> None:
    assert str(AVX2) == "x86_64 AVX2, no native bf16"
    assert str(AMX) == "x86_64 AVX512, native bf16 (avx512_bf16, amx_bf16)"
    assert str(CpuFacts("", "DEFAULT")) == "unknown CPU DEFAULT, no native bf16"


def test_this_machines_facts_agree_with_the_tests_vllm_makes() -> None:
    """vLLM picks its bf16 kernels with torch.cpu's private checks: the flags read here agree."""
    import torch

    facts = cpu_facts()
    assert facts.kernels == torch.backends.cpu.get_cpu_capability()
    if facts.architecture == "x86_64":
        assert ("avx512_bf16" in facts.bf16) == torch.cpu._is_avx512_bf16_supported()
        if torch.cpu._is_amx_tile_supported():  # every AMX CPU so far has AMX-BF16
            assert "amx_bf16" in facts.bf16


def _facts_under(environ: dict[str, str]) -> dict[str, object]:
    code = (
        "import json; from serving.core.cpu import choose_dtype, cpu_facts; f = cpu_facts(); "
        "print(json.dumps({'kernels': f.kernels, 'dtype': choose_dtype(f).dtype}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_the_choice_follows_aten_cpu_capability() -> None:
    """The emulation of a smaller CPU: torch reports the lowered kernel set, and the choice
    follows it (fp32, whatever this machine's flags)."""
    assert _facts_under({"ATEN_CPU_CAPABILITY": "avx2"}) == {"kernels": "AVX2", "dtype": "float32"}
    assert _facts_under({"ATEN_CPU_CAPABILITY": "default"}) == {
        "kernels": "DEFAULT",
        "dtype": "float32",
    }
