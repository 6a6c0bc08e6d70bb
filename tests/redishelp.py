"""Real Redis servers on 127.0.0.1 for tests: one `redis-server`, or a 3-master Redis Cluster.

Reusable outside pytest: `server = RedisServer(tmpdir).start()`, `server.url`, `server.kill()`,
`server.start()` again on the same port, `server.stop()`; `cluster = RedisCluster(tmpdir).start()`,
`cluster.url` (redis+cluster://seed), `cluster.stop()`. The pytest fixtures `redis_server` and
`redis_cluster` wrap them (import them into a test module or a conftest). Nothing is saved to disk
(--save '' --appendonly no), every file lives in the given directory, every loop is bounded.
"""
from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import List, Optional

import pytest

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
needs_redis = pytest.mark.skipif(REDIS_SERVER is None or REDIS_CLI is None,
                                 reason="redis-server / redis-cli not installed (CI installs the Debian package)")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(cluster_bus: bool = False) -> int:
    """A free loopback port; with `cluster_bus`, port + 10000 (Redis Cluster's bus) is free too."""
    for _ in range(200):
        port = random.randint(20000, 55000 if cluster_bus else 60000)
        if _port_free(port) and (not cluster_bus or _port_free(port + 10000)):
            return port
    raise RuntimeError("no free port on 127.0.0.1")


class RedisServer:
    """One redis-server process; `kill()` then `start()` restarts it, empty, on the same port."""

    def __init__(self, directory: Path, port: Optional[int] = None, cluster: bool = False, extra: tuple = ()):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cluster = cluster
        self.port = port or free_port(cluster_bus=cluster)
        self.extra = extra
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no", "--protected-mode", "yes",
                "--logfile", str(self.dir / "redis.log")]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", str(self.dir / "nodes.conf"),
                     "--cluster-node-timeout", "5000"]
        self.proc = subprocess.Popen(args + list(self.extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {self.log()[-2000:]}")
            if self.cli("PING").strip() == "PONG":
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer in {timeout} s")

    def cli(self, *command: str, timeout: float = 5.0) -> str:
        """redis-cli against this server: its standard output ("" when it cannot connect)."""
        r = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port), *command],
                           capture_output=True, text=True, timeout=timeout)
        return r.stdout if r.returncode == 0 and not r.stdout.startswith("Could not connect") else ""

    def log(self) -> str:
        p = self.dir / "redis.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the store vanishes mid-call, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


class RedisCluster:
    """Three masters, no replicas, on loopback; `url` names one of them as the seed."""

    def __init__(self, directory: Path, masters: int = 3):
        self.dir = Path(directory)
        self.nodes: List[RedisServer] = []
        ports: List[int] = []
        while len(ports) < masters:
            p = free_port(cluster_bus=True)
            if p not in ports:
                ports.append(p)
        self.nodes = [RedisServer(self.dir / f"node{p}", p, cluster=True) for p in ports]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout: float = 30.0) -> "RedisCluster":
        try:
            for n in self.nodes:
                n.start()
            r = subprocess.run([REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
                                "--cluster-replicas", "0", "--cluster-yes"],
                               capture_output=True, text=True, timeout=timeout)
            if r.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {r.stdout[-2000:]} {r.stderr[-2000:]}")
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                if all("cluster_state:ok" in n.cli("CLUSTER", "INFO") for n in self.nodes):
                    return self
                time.sleep(0.1)
            raise RuntimeError("the cluster did not reach cluster_state:ok")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


@pytest.fixture
def redis_server(tmp_path):
    """A fresh redis-server per test (cheap: ~20 ms), stopped after it."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server not installed (CI installs the Debian package)")
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory):
    """One 3-master cluster per test module (creating one takes a few seconds)."""
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip("redis-server / redis-cli not installed (CI installs the Debian package)")
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def dump_store(url: str) -> list:
    """Every key and every value in the store, whatever its type: what the privacy tests search
    for numbers in clear."""
    import redis

    r = redis.Redis.from_url(url)
    out = []
    for key in r.scan_iter(count=1000):
        out.append(key)
        kind = r.type(key)
        if kind == b"string":
            out.append(r.get(key))
        elif kind == b"hash":
            for f, v in r.hgetall(key).items():
                out += [f, v]
        elif kind == b"set":
            out += list(r.smembers(key))
        elif kind == b"zset":
            out += [m for m, _ in r.zrange(key, 0, -1, withscores=True)]
        elif kind == b"list":
            out += r.lrange(key, 0, -1)
        else:
            out.append(r.dump(key))
    return out
