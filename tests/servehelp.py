"""`manverify serve` as a subprocess on 127.0.0.1 (a free port, a lab configuration), and a plain
HTTP client (http.client) to call it."""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

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
        if self.proc is not None:
            terminate(self.proc)
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


def terminate(proc: subprocess.Popen) -> None:
    """SIGTERM (the graceful stop), SIGKILL if it is not over in 30 s; reaped either way."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


# ---------------------------------------------------------------------- in process
# manverify.serve.protocol driven without sockets: bytes in through data_received, answers out
# through a recording transport, ASGI tasks run on a private event loop.
class Transport:
    def __init__(self):
        self.sent, self.closed, self.eof = b"", False, False

    def write(self, data):
        assert not self.eof, "written after the write side was shut"
        self.sent += data

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True

    def can_write_eof(self):
        return True

    def write_eof(self):
        self.eof = True

    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass


class InProcess:
    """One App (a lab configuration) and the uvicorn Config manverify.serve.protocol runs under."""

    def __init__(self, directory: Path, limit_concurrency: Optional[int] = None, edit=None, prepare=None):
        from uvicorn.config import Config

        from manverify.serve import app as appmod
        from manverify.serve.protocol import Protocol

        path = lab.write(directory, workers=1)
        if edit is not None:
            config = json.loads(path.read_text())
            edit(config)
            path.write_text(json.dumps(config))
        if prepare is not None:
            prepare(directory)
        self.app = appmod.App(str(path))
        self.app.start()
        self.key = self.app.setup.server.api_keys[0] if self.app.setup.server.api_keys else b""
        self.signer = Signer((directory / "signer.key").read_bytes(), lab.LAB_X5U)
        self.loop = asyncio.new_event_loop()
        self.config = Config(app=self.app, http=Protocol, ws="none", lifespan="off", access_log=False,
                             server_header=False, limit_concurrency=limit_concurrency)
        self.config.load()

    def connect(self, state=None):
        from uvicorn.server import ServerState

        from manverify.serve.protocol import Protocol

        state = state or ServerState()
        protocol = Protocol(self.config, state, {}, _loop=self.loop)
        transport = Transport()
        protocol.connection_made(transport)
        return protocol, transport, state

    def finish(self, state) -> None:
        """Run the ASGI tasks (and the ones they start) to their end."""
        for _ in range(10):
            if not state.tasks:
                return
            self.loop.run_until_complete(asyncio.wait_for(asyncio.gather(*state.tasks), 10))
        raise AssertionError("ASGI tasks still running")

    def post(self, body: bytes, path: bytes = b"/stir/v1/verification", extra: bytes = b"") -> bytes:
        return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + self.key + b"\r\n"
                b"Content-Type: application/json\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def verification(self) -> bytes:
        return json.dumps({"verificationRequest": {"from": {"tn": ORIG}, "to": {"tn": [DEST]},
                                                   "identity": self.signer.sign(ORIG, DEST)}}).encode()

    def close(self) -> None:
        self.loop.close()


def armed(protocol) -> list:
    """The connection's live timers (by name): after every answer at least one must be, or the
    connection may stay open for ever."""
    names = ("_head_timer", "_body_timer", "_linger_timer", "timeout_keep_alive_task")
    return [n for n in names if getattr(protocol, n, None) is not None and not getattr(protocol, n).cancelled()]


def answers(sent: bytes) -> List[Tuple[int, Any]]:
    """(status, JSON body or raw bytes) of each answer in a byte stream, in order."""
    out = []
    while sent:
        head, _, rest = sent.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        if status == 100:
            sent = rest
            continue
        lines = head.split(b"\r\n")[1:]
        length = int(next(v for k, _, v in (line.partition(b": ") for line in lines) if k.lower() == b"content-length"))
        body, sent = rest[:length], rest[length:]
        try:
            out.append((status, json.loads(body)))
        except ValueError:
            out.append((status, body))
    return out
