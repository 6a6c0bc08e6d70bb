"""`manverify serve` as a subprocess on 127.0.0.1 (a free port, a lab configuration), and a plain
HTTP client (http.client) to call it."""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

from manverify import Signer
from manverify.serve import lab

ORIG, DEST = "+33612345678", "0198765432"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A running `manverify serve`; `edit(config)` shapes the lab configuration before it starts."""

    def __init__(self, directory: Path, edit: Optional[Callable[[dict], None]] = None, workers: int = 2):
        self.port = free_port()
        self.workers = workers
        self.dir = directory
        self.path = lab.write(directory, listen=f"127.0.0.1:{self.port}", workers=workers)
        self.config = json.loads(self.path.read_text())
        self.config["server"]["metrics_dir"] = str(directory / "metrics")
        if edit is not None:
            edit(self.config)
        self.write(self.config)
        self.keys = self.config["server"].get("api_keys") or []
        self.signer = Signer((directory / "signer.key").read_bytes(), lab.LAB_X5U)
        self.proc: Optional[subprocess.Popen] = None

    def write(self, config: dict) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=1))
        os.replace(tmp, self.path)  # atomic, as an operator's tooling would

    def start(self, timeout: float = 30.0) -> "Service":
        self.log = open(self.dir / "serve.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "manverify", "serve", "--config", str(self.path)],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"manverify serve exited with {self.proc.returncode}: {self.output()}")
            # every worker past its start-up (each reads the configuration then), and answering
            if self.output().count("Application startup complete.") >= self.workers:
                try:
                    if self.request("GET", "/readyz", auth=False)[0] == 200:
                        return self
                except OSError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"manverify serve not ready after {timeout} s: {self.output()}")

    def output(self) -> str:
        return (self.dir / "serve.log").read_text(errors="replace")

    def wait_log(self, text: str, count: int, timeout: float = 15.0) -> None:
        """Until the service's output holds `text` `count` times (one per worker, say)."""
        end = time.monotonic() + timeout
        while self.output().count(text) < count:
            if time.monotonic() > end:
                raise AssertionError(f"{text!r} not {count} times in the output after {timeout} s: {self.output()}")
            time.sleep(0.1)

    def stop(self) -> int:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the supervisor and its workers at once: a crash, not a stop."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None, *, auth: Any = True,
                headers: Optional[Dict[str, str]] = None, conn=None) -> Tuple[int, Any]:
        """(status, parsed JSON body or raw bytes). auth: True (the first key), a key, or False."""
        h = {"Content-Type": "application/json"} if body is not None else {}
        if auth:
            h["Authorization"] = f"Bearer {self.keys[0] if auth is True else auth}"
        h.update(headers or {})
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        own = conn is None
        conn = conn or self.connection()
        try:
            conn.request(method, path, data, h)
            r = conn.getresponse()
            raw = r.read()
        finally:
            if own:
                conn.close()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw

    def verify_atis(self, identity: Optional[str], orig: str = ORIG, dest: str = DEST, **kw) -> Tuple[int, Any]:
        body: dict = {"from": {"tn": orig}, "to": {"tn": [dest]}}
        if identity is not None:
            body["identity"] = identity
        return self.request("POST", "/stir/v1/verification", {"verificationRequest": body}, **kw)

    def __enter__(self) -> "Service":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes as they are on a fresh connection, read until the server closes it or times out."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out and b"connection: close" not in out.lower():
                    break
        except socket.timeout:
            pass
        return out
