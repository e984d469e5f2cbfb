"""Whether bfloat16 autocast is worth asking for: read from the CPU's instruction-set flags."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from geosal.models.device import cpu_flags_have_bf16, native_bf16

ZEN3 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse sse2 avx avx2 fma bmi2 sha_ni vaes vpclmulqdq\n"
        "bugs\t\t: sysret_ss_attrs\n")
ICE_LAKE = "flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512vl avx512_vnni avx512_vbmi2\nvmx flags\t: vnmi amx_bf16\n"
SAPPHIRE_RAPIDS = "flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16 amx_int8\n"
COOPER_LAKE = "flags\t\t: fpu avx2 avx512f avx512_bf16\n"


@pytest.mark.parametrize(("cpuinfo", "expected"), [
    (ZEN3, False),             # AVX2 only: bfloat16 is emulated
    (ICE_LAKE, False),         # AVX-512 without BF16; a 'vmx flags' line is not the CPU's flags
    (SAPPHIRE_RAPIDS, True),   # AMX
    (COOPER_LAKE, True),       # AVX512-BF16 without AMX
    ("", False),
])
def test_bf16_is_native_only_with_an_instruction_set_for_it(cpuinfo, expected):
    assert cpu_flags_have_bf16(cpuinfo) is expected


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/cpuinfo")
def test_this_cpu_is_judged_by_its_own_flags():
    words = set(Path("/proc/cpuinfo").read_text().split())
    assert native_bf16("cpu") is bool(words & {"avx512_bf16", "amx_bf16"})
