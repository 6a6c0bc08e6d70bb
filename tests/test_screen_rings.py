"""screen.rings, the local counters' per-subject windows: every answer against a brute-force model
of rings.py's rule, on random calls in and out of order, reads, gaps, big adds and member caps."""
from __future__ import annotations

import random

import pytest

from manverify.screen.rings import TOP, Distinct, count, distinct, head_of, start


class CountModel:
    """Every event kept as (slot, add); the rule of rings.py's docstring, written plainly."""

    def __init__(self, k):
        self.k, self.events, self.newest = k, [], None

    def call(self, cur, add):
        k = self.k
        if add:
            self.newest = cur if self.newest is None else max(self.newest, cur)
            self.events = [(s, a) for s, a in self.events if s >= self.newest - k]  # no longer held
        held = self.newest is not None and cur >= self.newest - k
        answer = sum(a for s, a in self.events if s >= cur - k) + (add if not held else 0)
        if add and held:
            self.events.append((cur, add))
            answer += add
        return answer


class DistinctModel:
    def __init__(self, k, cap):
        self.k, self.cap, self.last, self.newest = k, cap, {}, None

    def call(self, cur, member):
        k = self.k
        self.newest = cur if self.newest is None else max(self.newest, cur)
        self.last = {m: s for m, s in self.last.items() if s >= self.newest - k}
        if cur < self.newest - k:  # older than what is held
            new = member is not None and member not in self.last and len(self.last) < self.cap
            return len(self.last) + new
        if member is not None:
            if member in self.last:
                self.last[member] = max(self.last[member], cur)
            elif len(self.last) < self.cap:
                self.last[member] = cur
        return len(self.last)


def slots(rng, n, back):
    """Mostly forward, sometimes the same slot, sometimes a jump, sometimes back (out of order)."""
    cur = 1000
    for _ in range(n):
        cur += rng.choice([0, 0, 0, 1, 1, 2, 3, 7, 40, -1, -2, -back])
        yield cur


@pytest.mark.parametrize("k", [1, 2, 6, 30])
@pytest.mark.parametrize("seed", range(6))
def test_count_is_the_model(k, seed):
    rng = random.Random(seed * 100 + k)
    model, st = CountModel(k), None
    for cur in slots(rng, 600, k + 2):
        add = rng.choice([0, 0, 1, 1, 1, 2, 5])
        want = model.call(cur, add)
        if st is None:
            if not add:
                assert want == 0
                continue
            st, got = start(cur, add, k), add
        else:
            st, got = count(st, cur, add, k)
        assert got == want, (cur, add)


def test_a_one_slot_state_is_an_int_and_a_second_slot_makes_a_ring():
    st = start(500, 1, 6)
    assert st.__class__ is int and head_of(st) == 500
    st, n = count(st, 500, 2, 6)
    assert st.__class__ is int and n == 3
    st, n = count(st, 502, 1, 6)
    assert isinstance(st, list) and n == 4 and head_of(st) == 502
    st, n = count(st, 502 + 7, 1, 6)  # everything held has left: back to an int
    assert st.__class__ is int and n == 1
    st, n = count(st, 600, 0, 6)  # a read moves nothing
    assert n == 0 and head_of(st) == 509


def test_counts_beyond_an_int_slot_go_to_a_ring():
    st = start(7, TOP, 3)
    assert st.__class__ is int
    st, n = count(st, 7, 5, 3)
    assert n == TOP + 5 and isinstance(st, list)
    big = start(7, TOP + 1, 3)
    assert isinstance(big, list) and count(big, 8, 0, 3)[1] == TOP + 1


def test_negative_slots():
    st = start(-10, 1, 2)
    st, n = count(st, -9, 1, 2)
    assert n == 2 and head_of(st) == -9
    st, n = count(st, -7, 0, 2)
    assert n == 1


@pytest.mark.parametrize("k", [1, 6, 30])
@pytest.mark.parametrize("seed", range(6))
def test_distinct_is_the_model(k, seed):
    rng = random.Random(seed * 100 + k)
    cap = rng.choice([3, 10, 1000])
    members = [bytes([i]) * 16 for i in range(rng.choice([4, 12, 40]))]
    model, st = DistinctModel(k, cap), None
    for cur in slots(rng, 600, k + 2):
        member = rng.choice(members) if rng.random() < 0.8 else None
        want = model.call(cur, member)
        if st is None:
            st = Distinct(cur, k)
        assert distinct(st, cur, member, k, cap) == want, (cur, member)
        assert len(st.last) <= cap
        # a member is listed once per slot it was written in, so the lists stay bounded
        assert all(len(c) == len(set(c)) for c in st.cells if c)
