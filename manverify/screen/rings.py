"""One subject's sliding window in the local counters: the slots of a series as a ring of counts.

A series of window W in k slots keeps, for a subject, the events of the newest slot written
(`head`) and of the k slots before it; a call at slot `cur` counts those of slots cur - k on, as the
Redis script does. Writing a newer slot clears the cells of the slots that left, so a call costs an
index and one sum() in C whatever the traffic; a subject seen in one slot only (most callees, most
pairs) is an int.

Out of order (a `cur` older than `head`): counted like the Redis script (the slots held from
cur - k on, newer ones included) while its slot is held; an event older than the k slots before
`head` counts in its own answer only (the store keeps it for other late calls). A distinct
series' reads move `head` too (its members leave as they would on a write).
"""
from __future__ import annotations

from typing import Dict, List, Optional


TOP = (1 << 32) - 1  # a one-slot state is head << 32 | count


def start(cur: int, add: int, k: int):
    """The state of a series first written `add` (more than 0) at slot `cur`."""
    if add <= TOP:
        return (cur << 32) + add
    ring = [0] * (k + 2)
    ring[0], ring[1 + cur % (k + 1)] = cur, add
    return ring


def head_of(st) -> int:
    """The newest slot a state holds: when it stops counting is (head + k + 1) * width."""
    return st >> 32 if st.__class__ is int else st[0]


def count(st, cur: int, add: int, k: int):
    """Add `add` at slot `cur` (0: only read): (the new state, the window's count at `cur`).

    A state is an int while one slot holds events (`head << 32 | count`: no object for the garbage
    collector to walk, most subjects never need more), else a list `[head, cell, ...]`, slot s in
    cell 1 + s % (k + 1), changed in place."""
    if st.__class__ is int:
        head, top = st >> 32, st & TOP
        if cur == head:
            if top + add <= TOP:
                return st + add, top + add
        elif cur > head:
            if cur - head > k:  # the slot held has left the window
                return (start(cur, add, k) if add else st), add
            if not add:
                return st, top
        elif head - cur > k:
            return st, top + add
        elif not add:
            return st, top
        n = k + 1  # a second slot in the window (or a count beyond TOP): a ring
        ring = [0] * (n + 1)
        ring[0], ring[1 + head % n] = head, top
        st = ring
    head, n = st[0], len(st) - 1
    if cur > head:
        if cur - head >= n:  # everything held has left
            return (start(cur, add, k) if add else st), add
        if not add:  # a read moves nothing: the slots head - k to cur - k - 1 have left
            return st, sum(st) - head - sum([st[1 + s % n] for s in range(head - k, cur - k)])
        for s in range(head + 1, cur + 1):
            st[1 + s % n] = 0  # held slot s - n, now out of the window
        st[0] = cur
    elif head - cur >= n:
        return st, sum(st) - head + add
    if add:
        st[1 + cur % n] += add
    return st, sum(st) - st[0]


class Distinct:
    """Distinct members: each member's newest slot (`last`, whose size is the count), and per cell
    the members written in that slot, to forget them when it leaves. A member seen again in a newer
    slot stays listed in its old cell: forgetting checks `last` first."""

    __slots__ = ("head", "last", "cells")

    def __init__(self, cur: int, k: int):
        self.head = cur
        self.last: Dict[bytes, int] = {}
        self.cells: List[Optional[List[bytes]]] = [None] * (k + 1)


def distinct(st: Distinct, cur: int, member: Optional[bytes], k: int, cap: int) -> int:
    """Add `member` at slot `cur` (None: only read) and return the number of distinct members in
    the window at `cur`. Beyond `cap` members, new ones are not held (the count stays at the cap)."""
    last, cells = st.last, st.cells
    head = st.head
    n = k + 1
    if cur > head:
        if cur - head >= n:
            last.clear()
            cells[:] = [None] * n
        else:
            for s in range(head + 1, cur + 1):
                gone = cells[s % n]
                if gone is not None:
                    left = s - n
                    for m in gone:
                        if last.get(m) == left:
                            del last[m]
                    cells[s % n] = None
        st.head = cur
    elif head - cur >= n:  # older than the ring: not held
        return len(last) + (member is not None and member not in last and len(last) < cap)
    if member is not None:
        seen = last.get(member)
        if seen is None:
            if len(last) >= cap:
                return len(last)
        elif seen >= cur:  # out-of-order calls never move a member back
            return len(last)
        last[member] = cur
        cell = cells[cur % n]
        if cell is None:
            cells[cur % n] = [member]
        else:
            cell.append(member)
    return len(last)
