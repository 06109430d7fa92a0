"""The server caps glibc's malloc arenas (its memory stays flat under load), unless MALLOC_ARENA_MAX says otherwise."""

from __future__ import annotations

import ctypes.util
import platform

from fer_demo.core.allocator import cap_malloc_arenas


def test_arenas_are_capped_on_glibc_and_the_environment_wins(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    glibc = platform.libc_ver()[0] == "glibc" and ctypes.util.find_library("c") is not None
    assert cap_malloc_arenas() is glibc
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert cap_malloc_arenas() is False
