"""The Redis backend of the counters: shared by every proxy, one round trip per call, never in the
way of a call.

Each increment happens once, in the store: a call's ops run in one Lua script (EVALSHA, loaded
once per node), so two proxies on the same store see one count, and nothing is ever replicated or
retried after it may have run (redis-py's retries are off: a retried increment would count twice).

Round trips. Standalone: one EVALSHA per call; observe_many() sends one EVALSHA per MAX_OPS ops of
the batch, all written at once. Cluster: a script may only touch one hash slot, so keys carry a
hash tag, `{orig}` for the calling number's series (burst, fanout, short, outcomes, and the pair's
repeat) and `{dest}` for the callee's (flood); a call is then one script per slot, two in general,
on up to two masters. The scripts of all nodes are written before any answer is read, so the call
waits about one round trip (the slower node's), not two. A batch is one pipeline per master,
written together the same way.

Budget. Sockets time out after `budget_ms` (connect and read), so a store that is down or slow costs
a call at most about one budget (a cluster call with two slow nodes: two). That call, and every call
after it while the circuit breaker is open, is screened on local counters (Counts.degraded=True) at
no wait at all. One background thread at a time probes the store every `probe_interval_s` (the
script loaded on every master within the budget; in a cluster, the slot map read again first, so a
MOVED answer after a resharding or failover is an outage of one probe interval) and closes the
breaker. A call whose answer came too late may have been counted in the store as well as locally:
at most once in each, never twice in the store. Counts made locally during an outage stay local;
after it, the store's counts resume without them. Outages are logged at most once per
`log_interval_s` (with the number of lines held back), recoveries once each; stats() exports them.

Keys: `<prefix>{<tag>}:<series>:<window>:<slots>[:<subject>][:w<slot>|:o<slot>]`, tags and
subjects the keyed hashes of keys.py in base64url; values are counts and HyperLogLogs: no number in
clear. Retention: each key expires when its newest slot stops being counted (window + one slot).
"""
from __future__ import annotations

import logging
import os
import struct
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import NoScriptError, ResponseError
from redis.retry import Retry

from ..certs._warn import RateLimited
from ..errors import ConfigError
from ..passport import b64encode as _b64
from .counters import Counters, LocalCounters, Op, Windows
from .keys import Keyer

log = logging.getLogger("manverify.screen")

# Ops per script. A script holds the store (every other proxy waits) for ~2-8 us per op: 256 keep
# that under a few ms, inside the other proxies' budgets; a batch sends several, pipelined.
MAX_OPS = 256

# ARGV[1]: every op's spec packed with SPEC (kind, slot, slots, add, ttl_ms, ttl2_ms), read with
# struct.unpack: a third of the cost of one string per op parsed with string.match, half that of
# separate arguments. ARGV[2...]: the members of the 'd' ops that add, in order. Every
# redis.call costs ~1 us on top of its command, so each op makes as few as it can.
# 'c' (events): KEYS is one hash, a field per slot; slots older than the window are deleted as
# they are met; the expiry moves when a new (the newest) slot is written.
# 'd' (distinct): KEYS are W (the window ending with the current slot), then O for the current
# slot and the `slots` before it (the members seen in that slot alone). The first add of a slot
# makes W from the older O's (PFMERGE, once per slot), then each add is a PFADD to O and to W and
# the count one PFCOUNT of W: four calls, where a PFCOUNT over the O's would merge them into a
# dense 12 KB register set on every call (~100 us). W expires when its slot ends (ttl), O when no
# window counts it any more (ttl2). The answer is one integer per op, in one string: redis-py's
# parser (without hiredis) costs ~1 us per element of an array, bytes.split() far less.
SCRIPT = """
local res, ki, ai, pos, specs = {}, 1, 2, 1, ARGV[1]
local n = #specs
while pos <= n do
  local kind, slot, k, add, ttl, ttl2
  kind, slot, k, add, ttl, ttl2, pos = struct.unpack('>c1dBHdd', specs, pos)
  if kind == 'c' then
    local key, total, low = KEYS[ki], 0, slot - k
    slot = tostring(slot)
    local h = redis.call('HGETALL', key)
    for i = 1, #h, 2 do
      if tonumber(h[i]) < low then redis.call('HDEL', key, h[i]) else total = total + tonumber(h[i+1]) end
    end
    if add > 0 then
      if redis.call('HINCRBY', key, slot, add) == add then redis.call('PEXPIRE', key, ttl) end
      total = total + add
    end
    res[#res+1] = total
    ki = ki + 1
  else
    local w, o = KEYS[ki], KEYS[ki+1]
    if add > 0 then
      local member = ARGV[ai]
      ai = ai + 1
      if redis.call('EXISTS', w) == 0 then
        -- most callers are rare: with no older slot there is nothing to merge (~15 us saved)
        if redis.call('EXISTS', unpack(KEYS, ki + 2, ki + k + 1)) > 0 then
          redis.call('PFMERGE', w, unpack(KEYS, ki + 2, ki + k + 1))
        end
        redis.call('PFADD', w, member)
        redis.call('PEXPIRE', w, ttl)
        redis.call('PFADD', o, member)
        redis.call('PEXPIRE', o, ttl2)
      else
        redis.call('PFADD', o, member)
        redis.call('PFADD', w, member)
      end
      res[#res+1] = redis.call('PFCOUNT', w)
    elseif redis.call('EXISTS', w) == 1 then
      res[#res+1] = redis.call('PFCOUNT', w)
    else
      res[#res+1] = redis.call('PFCOUNT', unpack(KEYS, ki + 1, ki + k + 1))
    end
    ki = ki + k + 2
  end
end
return table.concat(res, ' ')
"""


SPEC = struct.Struct(">cdBHdd")


class _Script:
    """One EVALSHA being built: keys RESP-encoded as they come (binary members decoded as
    latin-1, one char a byte), so the command is one join. Packing by hand costs a fraction of
    redis-py's per-argument encoder, which dominated a call's cost."""

    __slots__ = ("node", "keys", "specs", "members", "n")

    def __init__(self, node: "_Node"):
        self.node = node
        self.keys: List[str] = []     # RESP bulk strings
        self.specs: List[bytes] = []  # SPEC-packed, one per op
        self.members: List[str] = []  # RESP bulk strings
        self.n = 0                    # ops

    def key(self, name: str) -> None:
        self.keys.append(f"${len(name)}\r\n{name}\r\n")

    def command(self, sha: str) -> bytes:
        specs = b"".join(self.specs)
        nkeys = str(len(self.keys))
        return (f"*{4 + len(self.keys) + len(self.members)}\r\n$7\r\nEVALSHA\r\n$40\r\n{sha}\r\n"
                f"${len(nkeys)}\r\n{nkeys}\r\n" + "".join(self.keys) + f"${len(specs)}\r\n"
                ).encode("latin-1") + specs + ("\r\n" + "".join(self.members)).encode("latin-1")


class _Node:
    """One server: connections whose sockets time out at the budget and never retry.

    Each thread keeps its own connection to the node (the pool's get/release cost ~20 us a call
    in redis-py 8, a fifth of a loopback round trip); one that failed is closed and reconnects
    on its next use. A forked process starts with none (the parent's sockets are not its own)."""

    def __init__(self, host: str, port: int, budget: float, **auth):
        self.name = f"{host}:{port}"
        self.client = redis.Redis(host=host, port=port, socket_timeout=budget, socket_connect_timeout=budget,
                                  retry=Retry(NoBackoff(), 0), **auth)
        self.pool = self.client.connection_pool
        self._mine = threading.local()
        self._all: List[Any] = []
        self._lock = threading.Lock()

    def connection(self):
        mine = self._mine
        conn = getattr(mine, "conn", None)
        if conn is None or mine.pid != os.getpid():
            conn = self.pool.connection_class(**self.pool.connection_kwargs)
            mine.conn, mine.pid = conn, os.getpid()
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.disconnect()
        self.pool.disconnect()


class RedisCounters(Counters):
    """Counters in Redis or Redis Cluster (see the module docstring for round trips and budget).

    Configuration: url (redis://[user:password@]host:port/db, rediss:// for TLS, redis+cluster://
    seed-host:port for a cluster, or "cluster": true with a redis:// seed), key_secret (shared by
    every proxy on the store, required), budget_ms (default 5), prefix (default "mv:"),
    probe_interval_s (default 1), log_interval_s (default 10)."""

    backend = "redis"

    def __init__(self, windows: Windows, keyer: Keyer, url: str = "redis://127.0.0.1:6379/0",
                 cluster: bool = False, budget_ms: float = 5.0, prefix: str = "mv:",
                 probe_interval_s: float = 1.0, log_interval_s: float = 10.0, max_keys: int = 200_000):
        super().__init__(windows, keyer)
        parts = urlsplit(url)
        if parts.scheme == "redis+cluster":
            cluster = True
        self.cluster = cluster
        self.budget = budget_ms / 1000.0
        self.prefix = prefix
        self.probe_interval = probe_interval_s
        self._where = f"{parts.hostname}:{parts.port or 6379}"  # never the password
        self._auth: Dict[str, Any] = {}
        if parts.username:
            self._auth["username"] = unquote(parts.username)
        if parts.password:
            self._auth["password"] = unquote(parts.password)
        if parts.scheme == "rediss":
            self._auth["ssl"] = True
        db = int(parts.path.strip("/") or 0)
        if not cluster:
            self._auth["db"] = db
        self._seed = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._nodes: Dict[Tuple[str, int], _Node] = {}
        self._slots: List[Optional[_Node]] = []
        self.local = LocalCounters(windows, keyer, max_keys=max_keys)
        self._sha = ""
        self._lock = threading.Lock()
        self._log = RateLimited(log, interval=log_interval_s)
        self._stop = threading.Event()
        self._probe: Optional[threading.Thread] = None
        self._probe_pid = os.getpid()
        self._open = False
        self._opened_at = 0.0
        self.errors = 0
        self.opens = 0
        self.store_calls = 0
        self.local_calls = 0
        self._last_error = ""
        try:
            self._connect()
        except Exception as e:  # a store down at start-up is an outage like any other
            self._failed(e)

    @classmethod
    def from_config(cls, config: Mapping, windows: Windows, keyer: Keyer) -> "RedisCounters":
        url = config.get("url", "redis://127.0.0.1:6379/0")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("redis", "rediss", "redis+cluster"):
            raise ConfigError("counters.url: redis://host:port/db, rediss://… or redis+cluster://host:port")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a bad port
            db = int(parts.path.strip("/") or 0)
        except ValueError:
            raise ConfigError("counters.url: a port and a database number") from None
        cluster = config.get("cluster", False)
        if not isinstance(cluster, bool):
            raise ConfigError("counters.cluster: true or false")
        if (cluster or parts.scheme == "redis+cluster") and db != 0:
            raise ConfigError("counters.url: a cluster has database 0 only")
        budget = config.get("budget_ms", 5)
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget <= 10_000:
            raise ConfigError("counters.budget_ms: milliseconds, more than 0 and at most 10000")
        prefix = config.get("prefix", "mv:")
        if not isinstance(prefix, str) or not prefix.isascii() or "{" in prefix or "}" in prefix or len(prefix) > 64:
            raise ConfigError("counters.prefix: a short ASCII string without { or }")
        kw = {}
        for name in ("probe_interval_s", "log_interval_s"):
            v = config.get(name, 1.0 if name == "probe_interval_s" else 10.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 3600:
                raise ConfigError(f"counters.{name}: seconds, more than 0 and at most 3600")
            kw[name] = float(v)
        return cls(windows, keyer, url=url, cluster=cluster, budget_ms=float(budget), prefix=prefix,
                   max_keys=config.get("max_keys", 200_000), **kw)

    # -- topology and scripts --------------------------------------------------------------------
    def _node(self, host: str, port: int) -> _Node:
        node = self._nodes.get((host, port))
        if node is None:
            node = self._nodes[(host, port)] = _Node(host, port, self.budget, **self._auth)
        return node

    def _connect(self) -> None:
        """Read the slot map (cluster) and load the script on every master; raises if any fails."""
        seed = self._node(*self._seed)
        if self.cluster:
            slots: List[Optional[_Node]] = [None] * 16384
            last_error: Optional[Exception] = None
            for candidate in [seed] + [n for n in list(self._nodes.values()) if n is not seed]:
                try:
                    table = candidate.client.execute_command("CLUSTER SLOTS")
                    break
                except Exception as e:
                    last_error = e
            else:
                raise last_error  # type: ignore[misc]
            for start, end, master, *_ in table:
                host = master[0].decode() if isinstance(master[0], bytes) else master[0]
                node = self._node(host or self._seed[0], int(master[1]))
                slots[int(start):int(end) + 1] = [node] * (int(end) - int(start) + 1)
            if any(n is None for n in slots):
                raise ConnectionError("cluster: some hash slots have no master")
            masters = list({id(n): n for n in slots}.values())
        else:
            masters = [seed]
        shas = {n.client.script_load(SCRIPT) for n in masters}
        (self._sha,) = shas
        if self.cluster:
            self._slots = slots

    # -- the call path ---------------------------------------------------------------------------
    def apply_many(self, calls: Sequence[Tuple[Sequence[Op], float]]) -> List[Tuple[Tuple[int, ...], bool]]:
        if self._open:
            return self._locally(calls)
        try:
            return self._in_store(calls)
        except Exception as e:  # never out of the call path: an answer of an unexpected shape, say
            self._failed(e)
            return self._locally(calls)

    def _in_store(self, calls: Sequence[Tuple[Sequence[Op], float]]) -> List[Tuple[Tuple[int, ...], bool]]:
        # one script per (node, slot) group; `where` maps each op to (group, index in its answer)
        groups: Dict[int, _Script] = {}  # group id -> script
        open_group: Dict[int, int] = {}  # hash slot -> id of the group taking its ops
        where: List[List[Tuple[int, int]]] = []
        heads: Dict[bytes, Tuple[str, int]] = {}
        cluster, prefix, pack = self.cluster, self.prefix, SPEC.pack
        for ops, now in calls:
            placed = []
            for op in ops:
                h = heads.get(op.tag)
                if h is None:
                    head = prefix + "{" + _b64(op.tag) + "}:"
                    h = heads[op.tag] = (head, key_slot(head.encode("ascii")) if cluster else 0)
                head, slot = h
                gid = open_group.get(slot, -1)
                g = groups.get(gid)
                if g is None or g.n >= MAX_OPS:  # a full script: the slot's next ops go in another
                    gid = open_group[slot] = len(groups)
                    g = groups[gid] = _Script(self._slots[slot] if cluster else self._nodes[self._seed])
                s = op.series
                k = s.slots
                cur = int(now // s.width)
                base = head + s.code if op.subject == op.tag else head + s.code + ":" + _b64(op.subject)
                if s.distinct:
                    g.key(f"{base}:w{cur}")
                    for j in range(k + 1):
                        g.key(f"{base}:o{cur - j}")
                    if op.add and op.member is not None:
                        g.specs.append(pack(b"d", cur, k, op.add, int(((cur + 1) * s.width - now) * 1000) + 1,
                                            int(((cur + k + 1) * s.width - now) * 1000) + 1))
                        g.members.append(f"${len(op.member)}\r\n{op.member.decode('latin-1')}\r\n")
                    else:
                        g.specs.append(pack(b"d", cur, k, 0, 0, 0))
                else:
                    g.key(base)
                    g.specs.append(pack(b"c", cur, k, op.add, int(((cur + k + 1) * s.width - now) * 1000) + 1, 0))
                placed.append((gid, g.n))
                g.n += 1
            where.append(placed)
        answers = self._run(groups)
        for gid, a in answers.items():
            if isinstance(a, bytes):
                answers[gid] = a.split()
        out: List[Tuple[Tuple[int, ...], bool]] = []
        for (ops, now), placed in zip(calls, where):
            values = []
            failed = False
            for gid, i in placed:
                a = answers[gid]
                if isinstance(a, Exception):
                    failed = True
                    break
                values.append(int(a[i]))
            if failed:  # screened locally; nothing is retried in the store (it may have counted)
                out.append((self.local.apply_many(((ops, now),))[0][0], True))
            else:
                out.append((tuple(values), False))
        degraded = sum(1 for _, d in out if d)
        with self._lock:
            self.store_calls += len(calls) - degraded
            self.local_calls += degraded
        return out

    def _locally(self, calls) -> List[Tuple[Tuple[int, ...], bool]]:
        with self._lock:
            self.local_calls += len(calls)
            forked = self._probe_pid != os.getpid()
        if forked:  # opened before a fork: this process needs a probe of its own
            self._failed(ConnectionError("open before fork"))
        return [(values, True) for values, _ in self.local.apply_many(calls)]

    def _run(self, groups: Dict[int, _Script]) -> Dict[Any, Any]:
        """Every group's EVALSHA written to its node, then every answer read: one round trip."""
        by_node: Dict[_Node, List[Any]] = {}
        for gid, script in groups.items():
            by_node.setdefault(script.node, []).append((gid, script.command(self._sha)))
        answers = self._exchange(by_node)
        retry = {}
        for node, items in by_node.items():  # a store restarted since the load: the script never ran
            missing = [(gid, cmd) for gid, cmd in items if isinstance(answers.get(gid), NoScriptError)]
            if missing:
                try:
                    node.client.script_load(SCRIPT)
                    retry[node] = missing
                except Exception as e:
                    for gid, _ in missing:
                        answers[gid] = e
        if retry:
            answers.update(self._exchange(retry))
        errors = [a for a in answers.values() if isinstance(a, Exception)]
        if errors:
            self._failed(errors[0])
        return answers

    def _exchange(self, by_node: Dict[_Node, List[Any]]) -> Dict[Any, Any]:
        answers: Dict[Any, Any] = {}
        sent = []
        for node, items in by_node.items():
            conn = node.connection()
            try:
                conn.send_packed_command([b"".join([cmd for _, cmd in items])], check_health=False)
                sent.append((conn, items))
            except Exception as e:
                conn.disconnect()
                answers.update((gid, e) for gid, _ in items)
        for conn, items in sent:
            try:
                for gid, _ in items:
                    try:
                        answers[gid] = conn.read_response()
                    except ResponseError as e:  # read whole: the connection stays in step
                        answers[gid] = e
            except Exception as e:  # timeout or reset: unread answers would desynchronise it
                conn.disconnect()
                for gid, _ in items:
                    if gid not in answers:
                        answers[gid] = e
        return answers

    # -- circuit breaker -------------------------------------------------------------------------
    def _failed(self, error: Exception) -> None:
        with self._lock:
            self.errors += 1
            self._last_error = type(error).__name__
            opened = not self._open
            if opened:
                self._open = True
                self.opens += 1
                self._opened_at = time.monotonic()
            if self._probe is not None and self._probe_pid != os.getpid():
                self._probe = None  # forked (e.g. a Kamailio worker): the parent's thread is not ours
            if self._probe is None and not self._stop.is_set():
                self._probe_pid = os.getpid()
                self._probe = threading.Thread(target=self._probing, name="manverify-counters-probe", daemon=True)
                self._probe.start()
        self._log.warning("store", "%s", f"screening counters: store {self._where} unusable "
                          f"({type(error).__name__}: {str(error)[:160]}); "
                          f"calls screened on local counters, probing every {self.probe_interval:g} s")

    def _probing(self) -> None:
        try:
            while not self._stop.wait(self.probe_interval):
                try:
                    self._connect()
                except Exception as e:
                    with self._lock:
                        self._last_error = type(e).__name__
                    continue
                with self._lock:
                    self._open = False
                    down = time.monotonic() - self._opened_at
                    n = self.local_calls
                log.warning(f"screening counters: store {self._where} back after {down:.1f} s "
                            f"({n} calls screened locally so far)")
                return
        finally:
            with self._lock:
                self._probe = None

    def stats(self) -> Dict[str, Any]:
        with self._lock:
            return {"backend": self.backend, "cluster": self.cluster, "store": self._where,
                    "degraded": self._open, "errors": self.errors, "breaker_opens": self.opens,
                    "store_calls": self.store_calls, "local_calls": self.local_calls,  # local: during outages
"last_error": self._last_error,
                    "budget_ms": self.budget * 1000, "masters": len({id(n) for n in self._slots}) or 1}

    def close(self) -> None:
        self._stop.set()
        probe = self._probe
        if probe is not None:
            probe.join(timeout=5)
        for node in list(self._nodes.values()):
            node.close()
