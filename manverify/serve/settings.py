"""The `server` and `signer` parts of the configuration document, checked (ConfigError names the
wrong key), and the Setup a worker serves from: swapped as a whole on reload."""
from __future__ import annotations

import logging
import os
import ssl
from typing import Any, Mapping, NamedTuple, Optional, Tuple

from .. import config as _config
from ..errors import ConfigError
from ..policy import Policy

OWN_KEYS = ("signer", "server", "screening")  # screening: built by manverify.serve.screening
SERVER_KEYS = frozenset(("listen", "workers", "api_keys", "lab", "tls", "limits", "metrics_dir", "log_level",
                         "reload"))
TLS_KEYS = ("cert", "key", "client_ca")  # checked in this order: the first mistake is named
UNAUTHORISED = ("refuse", "sign-b")  # signer.unauthorised: what a number the key's customer may not show gets
MIN_KEY_LENGTH = 16  # an API key shorter than this is a password someone chose, not a key
# Every limit, its default and its unit. A request beyond one is refused (413, 431) or cut off.
LIMITS = {
    "body": 16 * 1024,  # bytes of request body (413 beyond)
    "header": 8 * 1024,  # bytes of request line and headers together (431 beyond)
    "header_time": 5.0,  # seconds for a connection to send its request line and headers
    "request_time": 5.0,  # seconds for the body to arrive once the headers have
    "connections": 1000,  # open connections per worker (503 beyond)
    "keep_alive": 30.0,  # seconds an idle kept-alive connection stays open
}


class ServerSettings(NamedTuple):
    host: str
    port: int
    workers: int
    api_keys: Tuple[bytes, ...]
    lab: bool
    tls_cert: Optional[str]
    tls_key: Optional[str]
    client_ca: Optional[str]
    limits: Mapping[str, float]
    metrics_dir: Optional[str]
    log_level: int
    reload: bool
    # the customer of each API key, in api_keys' order (None: a key of no customer); empty when no
    # key names one: then signings are not screened (the service signs what it is asked)
    key_customers: Tuple[Optional[str], ...] = ()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls_cert else 'http'}://{host}:{self.port}"

    def server_context(self) -> Optional[ssl.SSLContext]:
        """The TLS context callers meet (None: plain HTTP); with client_ca, a certificate signed by
        it is required in the handshake."""
        if not self.tls_cert:
            return None
        return tls_context(self.tls_cert, self.tls_key, self.client_ca)


def tls_context(cert: str, key: Optional[str], client_ca: Optional[str]) -> ssl.SSLContext:
    """ServerSettings.server_context(), from the files alone (what a worker process is handed)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class Setup(NamedTuple):
    """What one configuration document decides, built and checked. A worker serves from one
    Setup at a time and replaces it with one assignment on reload."""

    config: dict
    server: ServerSettings
    verifier: Any
    policy: Optional[Policy]  # None: no policy configured, responses carry no decision
    signer: Any  # None: no signing endpoint
    screen: Any = None  # manverify.screen.Screen (manverify.serve.screening), None: not screening
    unauthorised: str = "refuse"  # signer.unauthorised: a number the customer may not show is refused, or signed B
    customer: Optional[str] = None  # a signing's own copy only: its API key's customer


def parse_server(section: Any) -> ServerSettings:
    s = _mapping(section, "server")
    _known(s, SERVER_KEYS, "server")
    host, port = _listen(s.get("listen", "127.0.0.1:8080"))
    workers = s.get("workers", 2)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
        raise ConfigError(f"server.workers must be an int from 1 to 256, not {workers!r}")
    keys, customers = _api_keys(s.get("api_keys", []))
    for k in keys:
        if len(k) < MIN_KEY_LENGTH or not k.isascii() or not k.isprintable() or " " in k:
            raise ConfigError(f"server.api_keys: each key must be at least {MIN_KEY_LENGTH} printable ASCII "
                              "characters without spaces (e.g. from `openssl rand -hex 24`)")
    lab = s.get("lab", False)
    if type(lab) is not bool:
        raise ConfigError(f"server.lab must be true or false, not {lab!r}")
    tls = _mapping(s.get("tls") or {}, "server.tls")
    _known(tls, TLS_KEYS, "server.tls")
    for name in TLS_KEYS:
        if name in tls and not (isinstance(tls[name], str) and os.path.isfile(tls[name])):
            raise ConfigError(f"server.tls.{name} must name a readable PEM file, not {tls[name]!r}")
    if tls and not ("cert" in tls and "key" in tls):
        raise ConfigError("server.tls needs cert and key (client_ca is optional)")
    if not keys and "client_ca" not in tls and not lab:
        raise ConfigError('no callers configured: set server.api_keys and/or server.tls.client_ca '
                          '(or "lab": true for an open lab server, never in production)')
    if lab and not keys and "client_ca" not in tls:
        logging.getLogger("manverify.serve").warning(
            "*** server.lab is true and NO AUTHENTICATION is configured (no api_keys, no client_ca): "
            "anyone who reaches %s can verify and sign. A lab, never production. ***", s.get("listen", "127.0.0.1:8080"))
    limits = dict(LIMITS)
    given = _mapping(s.get("limits") or {}, "server.limits")
    _known(given, LIMITS, "server.limits")
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise ConfigError(f"server.limits.{name} must be a positive number, not {value!r}")
        limits[name] = value
    for name in ("body", "header", "connections"):
        limits[name] = int(limits[name])
    metrics_dir = s.get("metrics_dir")
    if metrics_dir is not None and not isinstance(metrics_dir, str):
        raise ConfigError("server.metrics_dir must be a directory path")
    level = logging.getLevelName(str(s.get("log_level", "INFO")).upper())
    if not isinstance(level, int):
        raise ConfigError("server.log_level must be DEBUG, INFO, WARNING or ERROR")
    reload = s.get("reload", True)
    if type(reload) is not bool:
        raise ConfigError(f"server.reload must be true or false, not {reload!r}")
    return ServerSettings(host, port, workers, tuple(k.encode() for k in keys), lab, tls.get("cert"), tls.get("key"),
                          tls.get("client_ca"), limits, metrics_dir, level, reload,
                          tuple(customers) if any(c is not None for c in customers) else ())


def _api_keys(value: Any) -> Tuple[list, list]:
    """server.api_keys: strings, or {"key": "...", "customer": "acme"} for a key whose signings are
    screened as that customer's calls (screening.customers). (keys, their customers or None)."""
    if isinstance(value, str) or not isinstance(value, list):
        raise ConfigError("server.api_keys must be a list of strings (several: to rotate keys) or of "
                          '{"key": ..., "customer": ...} objects')
    keys, customers = [], []
    for i, k in enumerate(value):
        customer = None
        if isinstance(k, Mapping):
            _known(k, ("key", "customer"), f"server.api_keys[{i}]")
            customer = k.get("customer")
            if not isinstance(customer, str) or not customer:
                raise ConfigError(f"server.api_keys[{i}].customer must name a customer of screening.customers, "
                                  f"not {customer!r}")
            k = k.get("key")
        if not isinstance(k, str):
            raise ConfigError(f"server.api_keys[{i}] must be a string or an object with key and customer")
        keys.append(k)
        customers.append(customer)
    return keys, customers


def build_signer(section: Any, max_age: Any = 60):
    if section is None:
        return None
    from ..signer import Signer

    s = _mapping(section, "signer")
    _known(s, ("key", "x5u", "unauthorised"), "signer")
    if s.get("unauthorised", "refuse") not in UNAUTHORISED:
        raise ConfigError(f"signer.unauthorised must be one of {', '.join(UNAUTHORISED)}, not {s['unauthorised']!r}")
    if "key" not in s or "x5u" not in s:
        raise ConfigError("signer needs key (the P-256 private key's PEM file) and x5u (its chain's URL)")
    # The signer's iat window is the verifier's: a token it signs is fresh where it is checked.
    return Signer(_config.read_file(s["key"], "signer.key"), s["x5u"], max_age=max_age)


def build(config: Mapping[str, Any], verifier_factory=_config.build_verifier) -> Setup:
    """Check the whole document and build what it names (ConfigError on the first mistake)."""
    _config.check_keys(config, OWN_KEYS, "manverify serve")
    server = parse_server(config.get("server") or {})
    policy = _config.build_policy(config) if "policy" in config else None
    signer = build_signer(config.get("signer"), config.get("max_age", 60))
    unauthorised = _customers(config, server)
    return Setup(dict(config), server, verifier_factory(config), policy, signer, unauthorised=unauthorised)


def _customers(config: Mapping[str, Any], server: ServerSettings) -> str:
    """The keys' customers against screening.customers; signer.unauthorised (ConfigError naming
    the key)."""
    signer = config.get("signer") or {}
    unauthorised = signer.get("unauthorised", "refuse")  # checked by build_signer
    screening = config.get("screening")
    known = screening.get("customers") if isinstance(screening, Mapping) else None
    known = known if isinstance(known, Mapping) else {}
    for i, customer in enumerate(server.key_customers):
        if customer is not None and customer not in known:
            raise ConfigError(f"server.api_keys[{i}].customer: {customer!r} is not in screening.customers "
                              f"(known: {sorted(map(str, known))[:10]})")
    return unauthorised


def _listen(value: Any) -> Tuple[str, int]:
    if isinstance(value, str):
        host, sep, port = value.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if sep and host and port.isdigit() and 0 <= int(port) <= 65535:
            return host, int(port)
    raise ConfigError(f'server.listen must be "host:port" (e.g. "127.0.0.1:8080", "[::1]:8080"), not {value!r}')


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} must be a JSON object")
    return value


def _known(section: Mapping[str, Any], known, what: str) -> None:
    unknown = set(section) - set(known)
    if unknown:
        raise ConfigError(f"unknown key(s) in {what}: {sorted(unknown)}")
