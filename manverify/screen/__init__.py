"""Screening: after MAN says who signed a call, decide whether the network lets it through.

French numbering rules (plan.py, majnum.py), operator lists (lists.py), call patterns on shared
counters (counters.py), one function per rule id (rules.py), and the engine that runs them
(engine.py). Rule ids and their legal sources are part of the public contract (docs/screening.md).
"""
from .decision import ScreenDecision  # noqa: F401
from .engine import Screen  # noqa: F401
from .lab import screening_lab  # noqa: F401
