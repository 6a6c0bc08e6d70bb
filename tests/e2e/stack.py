"""Real SIP processes on 127.0.0.1 for the end-to-end tests and benches/load_sip.py.

Everything started here is stopped by its PID (and, as a last resort, its own process group,
which Popen(start_new_session=True) gives it) with bounded waits. Nothing listens beyond loopback.
"""
from __future__ import annotations

import contextlib
import email.utils
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "kamailio"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
DEBIAN_PYTHON = "/usr/bin/python3"

KAMAILIO = shutil.which("kamailio") or (Path("/usr/sbin/kamailio").exists() and "/usr/sbin/kamailio") or None
SIPP = shutil.which("sipp")
SECSIPIDX = shutil.which("secsipidx")
PYTHON3_MODULE = "/usr/lib/x86_64-linux-gnu/kamailio/modules/app_python3.so"
SECSIPID_MODULE = "/usr/lib/x86_64-linux-gnu/kamailio/modules/secsipid.so"


def missing_tools() -> List[str]:
    """Names of what CI installs (.ci/run) and this machine lacks."""
    out = []
    if not KAMAILIO:
        out.append("kamailio")
    if not Path(PYTHON3_MODULE).exists():
        out.append("kamailio-python3-modules")
    if not Path(SECSIPID_MODULE).exists():
        out.append("kamailio-secsipid-modules")
    if not SIPP:
        out.append("sipp (sip-tester)")
    if not SECSIPIDX:
        out.append("secsipidx")
    if not Path(DEBIAN_PYTHON).exists() or subprocess.run(
            [DEBIAN_PYTHON, "-c", "import venv, ensurepip"], capture_output=True).returncode != 0:
        out.append("python3-venv")
    return out


# ---------------------------------------------------------------------- manverify for Kamailio
_IGNORE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", ".venv*", "venv", "__pycache__",
                                 ".pytest_cache", ".hypothesis", ".benchmarks", "*.so", "*.o", "_build")


_BUILT: List[Path] = []  # the venv this test process built: one per session, not per module


def build_venv(dest: Path) -> Path:
    """A venv of Debian's /usr/bin/python3 (the interpreter app_python3 embeds) with this checkout
    installed in it, non-editable. The tree is copied first so the build never writes into the
    checkout. $MANVERIFY_E2E_VENV names a ready venv to reuse instead (local iteration)."""
    ready = os.environ.get("MANVERIFY_E2E_VENV")
    if ready:
        return Path(ready)
    if _BUILT and _BUILT[0].exists():
        return _BUILT[0]
    src = dest.parent / "manverify-src"
    shutil.copytree(ROOT, src, ignore=_IGNORE)
    subprocess.run([DEBIAN_PYTHON, "-m", "venv", str(dest)], check=True, timeout=120)
    pip = subprocess.run([str(dest / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(src)],
                         capture_output=True, text=True, timeout=600)
    if pip.returncode != 0:
        raise RuntimeError(f"pip install into the Debian-python venv failed:\n{pip.stdout}\n{pip.stderr}")
    _BUILT[:] = [dest]
    return dest


# ---------------------------------------------------------------------- processes
def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_bound(port: int) -> bool:
    needle = f"0100007F:{port:04X}"
    for table in ("/proc/net/udp",):
        try:
            with open(table) as f:
                if any(line.split()[1] == needle for line in f.readlines()[1:]):
                    return True
        except OSError:
            pass
    return False


def wait_for(predicate, timeout: float, what: str, proc: Optional[subprocess.Popen] = None, log: Optional[Path] = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}\n{tail}")


def stop(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM the process by PID, then SIGKILL its own process group if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group Popen(start_new_session=True) created
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)


def process_tree(pid: int) -> List[int]:
    """pid and its descendants (Kamailio's workers, timers, ...), from /proc."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime of these processes (CLK_TCK resolution)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


class Kamailio:
    """One Kamailio instance on 127.0.0.1:port, foreground (-DD), logging to a file."""

    def __init__(self, workdir: Path, cfg: Path, port: int, defines: Dict[str, str], env: Optional[Dict[str, str]] = None,
                 name: str = "kamailio"):
        self.workdir, self.cfg, self.port = workdir, cfg, port
        self.log = workdir / f"{name}.log"
        self.rundir = workdir / f"{name}-run"
        self.rundir.mkdir(parents=True, exist_ok=True)
        args = [KAMAILIO, "-f", str(cfg), "-DD", "-E", "-Y", str(self.rundir), "-P", str(self.rundir / "kamailio.pid"),
                "-m", "64", "-M", "16", "-A", f"LISTEN=udp:127.0.0.1:{port}"]
        for k, v in defines.items():
            args += ["-A", f"{k}={v}"]
        self.args = args
        self.env = dict(os.environ) if env is None else dict(env)
        self.proc: Optional[subprocess.Popen] = None

    def __enter__(self) -> "Kamailio":
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=self.env, cwd=self.workdir, start_new_session=True)
        wait_for(lambda: udp_bound(self.port), 15, f"kamailio on udp 127.0.0.1:{self.port}", self.proc, self.log)
        # The workers load the Python verifier after fork: give them a moment to be ready.
        wait_for(self._workers_ready, 15, "kamailio workers", self.proc, self.log)
        return self

    def _workers_ready(self) -> bool:
        return len(process_tree(self.proc.pid)) >= 3

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            stop(self.proc)

    def pids(self) -> List[int]:
        return process_tree(self.proc.pid) if self.proc and self.proc.poll() is None else []

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


class SippUAS:
    """SIPp answering every INVITE (uas_verstat.xml) and logging what it received."""

    def __init__(self, workdir: Path, port: int, name: str = "uas", logs: bool = True):
        self.workdir, self.port = workdir, port
        self.logfile = workdir / f"{name}-messages.log"
        self.out = workdir / f"{name}.out"
        self.args = [SIPP, "-sf", str(SCENARIOS / "uas_verstat.xml"), "-i", "127.0.0.1", "-p", str(port),
                     "-nostdin", "-trace_err", "-error_file", str(workdir / f"{name}-errors.log")]
        if logs:
            self.args += ["-trace_logs", "-log_file", str(self.logfile)]
        self.proc: Optional[subprocess.Popen] = None

    def __enter__(self) -> "SippUAS":
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.workdir, start_new_session=True)
        wait_for(lambda: udp_bound(self.port), 10, f"sipp UAS on udp 127.0.0.1:{self.port}", self.proc, self.out)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            stop(self.proc)

    def received(self) -> Dict[str, List[Tuple[str, str, str]]]:
        """{case: [(P-Asserted-Identity, Reason, Privacy), ...]} of the INVITEs that got through."""
        out: Dict[str, List[Tuple[str, str, str]]] = {}
        if self.logfile.exists():
            for line in self.logfile.read_text(errors="replace").splitlines():
                parts = line.split("|")
                if len(parts) == 4:
                    out.setdefault(parts[0].strip(), []).append(tuple(p.strip() for p in parts[1:]))
        return out


def run_uac(workdir: Path, target_port: int, csv: Path, calls: int, rate: float = 50, timeout: float = 60,
            name: str = "uac", extra: Sequence[str] = (), logs: bool = True,
            scenario: str = "uac_identity.xml") -> subprocess.CompletedProcess:
    """SIPp sending `calls` INVITEs from csv (scenarios/`scenario`) to 127.0.0.1:target_port."""
    port = free_udp_port()
    args = [SIPP, f"127.0.0.1:{target_port}", "-sf", str(SCENARIOS / scenario), "-inf", str(csv),
            "-i", "127.0.0.1", "-p", str(port), "-m", str(calls), "-r", str(rate), "-nostdin",
            "-timeout", f"{int(timeout)}s", "-timeout_error", "-recv_timeout", "8000",
            *(["-trace_logs", "-log_file", str(workdir / f"{name}-codes.log")] if logs else []),
            "-trace_err", "-error_file", str(workdir / f"{name}-errors.log"),
            "-trace_stat", "-stf", str(workdir / f"{name}-stats.csv"), *extra]
    for stale in (f"{name}-codes.log", f"{name}-stats.csv", f"{name}-errors.log"):
        with contextlib.suppress(FileNotFoundError):
            (workdir / stale).unlink()
    with open(workdir / f"{name}.out", "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout + 30)
        finally:
            stop(proc)
    return subprocess.CompletedProcess(args, proc.returncode if proc.returncode is not None else rc)


def uac_codes(workdir: Path, name: str = "uac") -> Dict[str, List[int]]:
    """{case: [final response code, ...]} from the UAC's log."""
    out: Dict[str, List[int]] = {}
    path = workdir / f"{name}-codes.log"
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                out.setdefault(parts[0], []).append(int(parts[1]))
    return out


def uac_stats(workdir: Path, name: str = "uac") -> Dict[str, str]:
    """The last row of SIPp's -trace_stat CSV as {column: value}."""
    path = workdir / f"{name}-stats.csv"
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()] if path.exists() else []
    if len(lines) < 2:
        return {}
    head, last = lines[0].split(";"), lines[-1].split(";")
    return dict(zip(head, last))


# ---------------------------------------------------------------------- signed calls
def sip_date(now: Optional[float] = None) -> str:
    return email.utils.formatdate(now, usegmt=True)


def secsipidx_token(key: Path, orig: str, dest: str, x5u: str, iat: int, attest: str = "A") -> str:
    p = subprocess.run([SECSIPIDX, "-sign", "-orig-tn", orig, "-dest-tn", dest, "-attest", attest,
                        "-orig-id", str(uuid.uuid4()), "-iat", str(iat), "-x5u", x5u, "-k", str(key)],
                       capture_output=True, text=True, timeout=20)
    if p.returncode != 0:
        raise RuntimeError(f"secsipidx -sign failed: {p.stderr}")
    return p.stdout.strip()


def write_csv(path: Path, rows: Sequence[Sequence[str]]) -> Path:
    lines = ["SEQUENTIAL"]
    for row in rows:
        for field in row:
            if ";" in field or "\n" in field:
                raise ValueError(f"SIPp CSV fields cannot hold ';' or newlines: {field[:60]!r}")
        lines.append(";".join(row))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_manverify_config(path: Path, *, venv: Path, root_pem: Path, cache_dir: Path, next_hop: Optional[str],
                           policy: Optional[dict] = None, **extra) -> Path:
    config = {
        "venv": str(venv),
        "trust_anchors": [str(root_pem)],
        "cache_dir": str(cache_dir),
        "allow_http": True,  # lab: the x5u server is http on 127.0.0.1
        "max_age": 60,
        "policy": policy or {"role": "terminating"},
        "log_decisions": True,
    }
    if next_hop is not None:  # none for a redirect server
        config["next_hop"] = next_hop
    config.update(extra)
    path.write_text(json.dumps(config, indent=2))
    return path


def python_env() -> Dict[str, str]:
    """Environment for a Kamailio embedding Debian's python: no pyenv/virtualenv leakage."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYENV", "VIRTUAL_ENV"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # The embedded interpreter finds its prefix through the python3 on PATH: a pyenv shim there
    # makes Debian's libpython load pyenv's stdlib extension modules (undefined symbols).
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return env


__all__ = [name for name in dir(sys.modules[__name__]) if not name.startswith("_")]
