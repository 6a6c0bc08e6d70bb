"""Screening: after MAN says who signed a call, decide whether the network lets it through.

French numbering rules (plan.py, majnum.py), operator lists (lists.py), call patterns on shared
counters (counters.py), one function per rule id (rules.py), and the engine that runs them
(engine.py). Rule ids and their legal sources are part of the public contract (docs/screening.md).
"""
from typing import Any

__all__ = ["Screen", "ScreenDecision", "screening_lab"]
_LAZY = {"Screen": "engine", "ScreenDecision": "decision", "screening_lab": "lab"}


def __getattr__(name: str) -> Any:
    # Imported on first use (PEP 562): verifying, signing and the report's per-rule table import
    # this package, and must not need the screening extra's numpy, redis-py and holidays.
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
