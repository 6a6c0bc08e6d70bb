"""A real HTTP(S) server on 127.0.0.1 for certificate tests: routes answer good, slow, broken,
redirecting or oversized responses, and every request is counted per path."""
from __future__ import annotations

import collections
import datetime as dt
import http.server
import ipaddress
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/pem-certificate-chain"
    headers: Dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0  # send the whole response one byte at a time, this many seconds apart
    length: bool = True  # False: no Content-Length, the body ends when the connection closes


class TLSLab:
    """A throwaway TLS CA and a server certificate for 127.0.0.1 / localhost."""

    def __init__(self):
        now = dt.datetime.now(dt.timezone.utc)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "manverify test TLS CA")])
        self.ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(self.ca_key, hashes.SHA256()))
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (x509.CertificateBuilder()
                     .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                     .issuer_name(name).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                     .add_extension(x509.SubjectAlternativeName([
                         x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                         critical=False)
                     .sign(self.ca_key, hashes.SHA256()))
        self.ca_pem = self.ca.public_bytes(serialization.Encoding.PEM)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.NamedTemporaryFile() as c, tempfile.NamedTemporaryFile() as k:
            c.write(self.cert.public_bytes(serialization.Encoding.PEM))
            k.write(self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
            c.flush()
            k.flush()
            ctx.load_cert_chain(c.name, k.name)
        return ctx


class CertServer:
    """`with CertServer(tls=lab) as srv: srv.routes["/a.pem"] = Route(body=...); srv.url("/a.pem")`"""

    def __init__(self, tls: Optional[TLSLab] = None):
        self.routes: Dict[str, Route] = {}
        self.hits: collections.Counter = collections.Counter()
        self.tls = tls
        routes, hits = self.routes, self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits[self.path] += 1
                route = routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                if route.delay:
                    time.sleep(route.delay)
                if route.drip:
                    head = f"HTTP/1.1 {route.status} X\r\nContent-Type: {route.content_type}\r\n" \
                           f"Content-Length: {len(route.body)}\r\n\r\n"
                    try:
                        for i, byte in enumerate(head.encode() + route.body):
                            self.wfile.write(bytes([byte]))
                            if i % 4 == 0:
                                time.sleep(route.drip)
                    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                        pass
                    self.close_connection = True
                    return
                try:
                    self.send_response(route.status)
                    if route.content_type:
                        self.send_header("Content-Type", route.content_type)
                    for k, v in route.headers.items():
                        self.send_header(k, v)
                    if route.length:
                        self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.server_context().wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
