"""The CPU a bench ran on, as the benches print it: its model name and instruction-set flags (/proc/cpuinfo)."""

from __future__ import annotations

import os
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def cpu_model_and_flags(cpuinfo: Path = CPUINFO) -> tuple[str, set[str]] | None:
    """(model name, flags) of the first CPU listed, or None where there is no /proc/cpuinfo."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():  # "key\t: value", once per CPU: the first CPU's
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("model name", ""), set(fields.get("flags", "").split())


def cpu_line(flags_that_matter) -> str:
    """"CPU: AMD EPYC ..., 2 logical CPUs; avx2 yes, avx512f no, ..." from /proc/cpuinfo, for a bench's header."""
    cpu = cpu_model_and_flags()
    if cpu is None:
        return "CPU: unknown (no /proc/cpuinfo)"
    model, flags = cpu
    have = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in flags_that_matter)
    return f"CPU: {model or 'unknown'}, {os.cpu_count()} logical CPUs; {have}"
