"""Fetching a certificate chain from an x5u URL, under the rules that keep a verifier safe.

Why the standard library's http.client: the fetch must not follow redirects, must connect to the
very address it checked (no second DNS lookup an attacker could answer differently), must stop at
a byte cap and a total time budget, and must never consult proxies or netrc. http.client does
exactly one request on a socket we open ourselves; a general client would need each of those
behaviours switched off, and adds a dependency to every SIP worker.
"""
from __future__ import annotations

import email.utils
import http.client
import io
import ipaddress
import os
import socket
import ssl
import threading
import time
from typing import NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

from ..errors import ConfigError

DEFAULT_PORTS = (443, 8443)
ACCEPTED_TYPES = frozenset((
    "application/pem-certificate-chain", "application/x-pem-file", "application/pkix-cert",
    "application/x-x509-ca-cert", "application/x-x509-user-cert", "application/octet-stream",
    "text/plain", "",
))
CRL_TYPES = ACCEPTED_TYPES | {"application/pkix-crl", "application/x-pkcs7-crl"}


class FetchError(Exception):
    """The chain could not be obtained; the message says why (it becomes a 436 detail) and
    `kind` names the failure class for counters (url, dns, address, connect, tls, timeout,
    redirect, http-status, content-type, oversized, protocol)."""

    def __init__(self, message: str, kind: str = "protocol"):
        super().__init__(message)
        self.kind = kind


class Fetched(NamedTuple):
    body: bytes
    content_type: str
    ttl: Optional[float]  # freshness the server granted (Cache-Control/Expires), None if none


class Limits(NamedTuple):
    connect_timeout: float = 2.0
    total_timeout: float = 4.0
    max_bytes: int = 64 * 1024
    https_ports: Tuple[int, ...] = DEFAULT_PORTS


def check_url(url: str, allow_http: bool, ports=DEFAULT_PORTS) -> Tuple[str, str, int, str]:
    """(scheme, host, port, path) when `url` is an acceptable x5u, else FetchError."""
    if not isinstance(url, str) or len(url) > 2048:
        raise FetchError("x5u is not a URL of at most 2048 characters", "url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise FetchError(f"x5u {url!r} is not a valid URL: {e}", "url") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or (scheme == "http" and not allow_http):
        raise FetchError(f"x5u {url!r} is not https", "url")
    if parts.username is not None or parts.password is not None:
        raise FetchError("x5u must not carry user information", "url")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise FetchError("x5u must not carry a query or fragment", "url")
    host = parts.hostname
    if not host:
        raise FetchError(f"x5u {url!r} has no host", "url")
    if port is None:
        port = 443 if scheme == "https" else 80
    if scheme == "https" and port not in ports:
        raise FetchError(f"x5u port {port} is not one of {', '.join(map(str, ports))}", "url")
    return scheme, host, port, parts.path or "/"


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: reaches the IPv4 address in the low 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215, local use: special purpose


def _allowed_address(ip: str, allow_loopback: bool) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address):
        # Addresses that carry an IPv4 destination are judged by it, or 64:ff9b::10.0.0.1 (via
        # a NAT64 gateway) or 2002:a00:1:: (6to4) would reach a private host.
        if addr in _NAT64_LOCAL:
            return False
        if addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        elif addr in _NAT64:
            addr = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        elif addr.sixtofour is not None:
            addr = addr.sixtofour
    if addr.is_loopback:
        return allow_loopback
    return addr.is_global and not addr.is_multicast


_DNS_SLOTS = threading.BoundedSemaphore(32)  # lookups that may hang in the resolver at once


def _getaddrinfo(host: str, port: int, timeout: Optional[float]):
    """socket.getaddrinfo bounded in time. The system resolver takes no timeout, so the lookup
    runs in a daemon thread that the caller stops waiting for; at most 32 may be stuck at once."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)  # a literal: no lookup
    except ValueError:
        pass
    if timeout is None:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not _DNS_SLOTS.acquire(blocking=False):
        raise FetchError(f"cannot resolve {host}: too many lookups waiting for the resolver", "dns")
    box: list = []
    done = threading.Event()

    def run():
        try:
            box.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as e:  # handed to the caller below
            box.append(e)
        finally:
            _DNS_SLOTS.release()
            done.set()

    try:
        threading.Thread(target=run, name="manverify-dns", daemon=True).start()
    except RuntimeError:
        _DNS_SLOTS.release()
        raise FetchError(f"cannot resolve {host}: no thread for the lookup", "dns") from None
    if not done.wait(timeout):
        raise FetchError(f"cannot resolve {host}: no answer within {timeout:g} s", "dns")
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def resolve(host: str, port: int, allow_loopback: bool, timeout: Optional[float] = None) -> str:
    """One address for host that is public (or loopback in lab mode); FetchError otherwise."""
    try:
        infos = _getaddrinfo(host, port, timeout)
    except FetchError:
        raise
    except (socket.gaierror, UnicodeError, OSError) as e:
        raise FetchError(f"cannot resolve {host}: {e}", "dns") from None
    refused = []
    for family, _, _, _, sockaddr in infos:
        ip = sockaddr[0]
        if _allowed_address(ip, allow_loopback):
            return ip
        refused.append(ip)
    raise FetchError(f"{host} resolves only to private or special-purpose addresses ({', '.join(refused[:3])})", "address")


def fetch(
    url: str,
    *,
    allow_http: bool = False,
    allow_loopback: bool = False,
    tls_context: Optional[ssl.SSLContext] = None,
    limits: Limits = Limits(),
    now: Optional[float] = None,
    any_http_host: bool = False,
) -> Fetched:
    """GET the chain at url; FetchError with a human-readable reason on any failure.

    any_http_host is for CRLs, which are signed and commonly published over plain http.
    """
    scheme, host, port, path = check_url(url, allow_http, limits.https_ports)
    # One budget for everything below: name lookup, connect, TLS, request, headers and body.
    deadline = time.monotonic() + limits.total_timeout
    dns_budget = min(limits.connect_timeout, limits.total_timeout)
    if scheme == "http" and any_http_host:
        ip = resolve(host, port, allow_loopback, dns_budget)
    else:
        # Plain http for an x5u is a lab mode: only ever towards this machine.
        ip = resolve(host, port, allow_loopback or scheme == "http", dns_budget)
        if scheme == "http" and not ipaddress.ip_address(ip.split("%", 1)[0]).is_loopback:
            raise FetchError("http x5u is allowed on loopback only", "address")
    try:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("name lookup used the budget")
        sock = socket.create_connection((ip, port), timeout=min(limits.connect_timeout, remaining))
    except OSError as e:
        raise FetchError(f"cannot connect to {host}:{port}: {_reason(e)}", "connect") from None
    try:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        if scheme == "https":
            ctx = tls_context or ssl.create_default_context()
            try:
                sock = ctx.wrap_socket(sock, server_hostname=host)
            except (ssl.SSLError, ssl.CertificateError, OSError) as e:
                raise FetchError(f"TLS with {host}:{port} failed: {_reason(e)}", "tls") from None
        conn = http.client.HTTPConnection(host, port, timeout=deadline - time.monotonic())
        # The socket we connected to the checked address, behind a wrapper that gives every
        # read and write only what is left of the budget (http.client would give each recv
        # the full timeout, so a server dripping its headers could hold a worker for minutes).
        conn.sock = _DeadlineSocket(sock, deadline)
        try:
            conn.request("GET", path, headers={
                "Accept": "application/pem-certificate-chain, application/pkix-cert;q=0.8",
                "User-Agent": "manverify",
                "Connection": "close",
            })
            resp = conn.getresponse()
            if 300 <= resp.status < 400:
                raise FetchError(f"x5u answered {resp.status} {resp.reason}: redirects are not followed", "redirect")
            if resp.status != 200:
                raise FetchError(f"x5u answered {resp.status} {resp.reason}", "http-status")
            ctype = (resp.getheader("Content-Type") or "").split(";", 1)[0].strip().lower()
            if ctype not in (CRL_TYPES if any_http_host else ACCEPTED_TYPES):
                raise FetchError(f"x5u served {ctype!r}, not a certificate chain", "content-type")
            length = resp.getheader("Content-Length")
            if length and length.isdigit() and int(length) > limits.max_bytes:
                raise FetchError(f"x5u response is {length} bytes, larger than the {limits.max_bytes}-byte limit", "oversized")
            body = bytearray()
            while len(body) <= limits.max_bytes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FetchError(f"x5u took longer than {limits.total_timeout:g} s", "timeout")
                sock.settimeout(remaining)
                chunk = resp.read1(16384) if hasattr(resp, "read1") else resp.read(16384)
                if not chunk:
                    break
                body += chunk
            if len(body) > limits.max_bytes:
                raise FetchError(f"x5u response is larger than {limits.max_bytes} bytes", "oversized")
            ttl = _freshness(resp, time.time() if now is None else now)
            return Fetched(bytes(body), ctype, ttl)
        except FetchError:
            raise
        except socket.timeout:
            raise FetchError(f"x5u took longer than {limits.total_timeout:g} s", "timeout") from None
        except (http.client.HTTPException, OSError, ValueError) as e:
            raise FetchError(f"x5u fetch failed: {_reason(e)}") from None
        finally:
            conn.close()
    finally:
        sock.close()


class _DeadlineSocket(io.RawIOBase):
    """What http.client needs of a socket (sendall, makefile), each call bounded by `deadline`."""

    def __init__(self, sock: socket.socket, deadline: float):
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def _arm(self) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("total time budget used")
        self._sock.settimeout(remaining)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._arm()
        return self._sock.recv_into(buffer)

    def sendall(self, data) -> None:
        self._arm()
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb", *args, **kwargs):
        return io.BufferedReader(self)

    def close(self) -> None:
        # http.client closes the connection's socket while the response is still being read
        # (like a real socket with a makefile() open); fetch() closes the real one at the end.
        pass


def _freshness(resp, now: float) -> Optional[float]:
    """Seconds the response may be reused (RFC 9111 max-age, then Expires); None if unsaid."""
    cc = (resp.getheader("Cache-Control") or "").lower()
    for directive in cc.split(","):
        name, _, value = directive.strip().partition("=")
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age" and value.strip().isdigit():
            return float(value.strip())
    expires = resp.getheader("Expires")
    if expires:
        try:
            when = email.utils.parsedate_to_datetime(expires)
            if when is not None and when.tzinfo is not None:
                return max(0.0, when.timestamp() - now)
        except (TypeError, ValueError, IndexError, OverflowError):
            return 0.0
    return None


def _reason(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text[:200]


def tls_context(tls_ca) -> Optional[ssl.SSLContext]:
    """The TLS trust for fetching: None (the system's roots) or only the given lab CA (a path or
    PEM); ConfigError when it cannot be loaded. The STI trust anchors never mix with it."""
    if tls_ca is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        if isinstance(tls_ca, bytes):
            ctx.load_verify_locations(cadata=tls_ca.decode("ascii"))
        elif isinstance(tls_ca, str) and "-----BEGIN" in tls_ca:
            ctx.load_verify_locations(cadata=tls_ca)
        else:
            ctx.load_verify_locations(cafile=os.fspath(tls_ca))
    except (OSError, ssl.SSLError, TypeError, ValueError) as e:
        raise ConfigError(f"tls_ca cannot be loaded: {e}") from None
    return ctx


class Fetcher:
    """Fetching under one store's settings, within the time budget of the evaluation running in
    the calling thread: the x5u fetch and any CRL fetches of one miss share `total_timeout`, so a
    miss never holds the calling worker longer than that."""

    def __init__(self, enabled: bool, allow_http: bool, allow_loopback: bool, tls_ca, limits: Limits):
        self.enabled = enabled
        self.allow_http = allow_http
        self.allow_loopback = allow_loopback
        self.limits = limits
        self._tls = tls_context(tls_ca)
        self._budget = threading.local()  # .deadline of the evaluation running in this thread

    def start_budget(self) -> float:
        """Start the budget of an evaluation in this thread; its deadline (time.monotonic())."""
        self._budget.deadline = time.monotonic() + self.limits.total_timeout
        return self._budget.deadline

    def _limits_left(self, **changes) -> Limits:
        deadline = getattr(self._budget, "deadline", None)
        left = self.limits.total_timeout if deadline is None else deadline - time.monotonic()
        if left <= 0.01:
            raise FetchError(f"the {self.limits.total_timeout:g} s budget is used up", "timeout")
        return self.limits._replace(total_timeout=min(self.limits.total_timeout, left), **changes)

    def chain(self, x5u: str, now: float) -> Fetched:
        return fetch(x5u, allow_http=self.allow_http, allow_loopback=self.allow_loopback,
                     tls_context=self._tls, limits=self._limits_left(), now=now)

    def crl(self, url: str, now: float) -> Fetched:
        # CRLs are signed objects usually published over plain http.
        return fetch(url, allow_http=True, allow_loopback=self.allow_loopback, tls_context=self._tls,
                     limits=self._limits_left(max_bytes=4 << 20), now=now, any_http_host=True)
