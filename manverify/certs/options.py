"""Every CertStore setting, in one frozen value checked once.

`StoreOptions.create(**kw)` is how a configuration (keyword arguments, a parsed JSON object) becomes
options: an unknown name or a value of the wrong type raises ConfigError naming it, so a misspelt
`cache_dir_max_file=` or `cache_dir_max_files="x"` fails at start-up instead of being ignored.
`CertStore.from_options(options)` builds a store from them; a reload builds a new one from the same
options, re-reading every file they name.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import types
from dataclasses import dataclass
from typing import Any, FrozenSet, Mapping, Optional, Tuple, Union

from ..errors import ConfigError
from .fetch import DEFAULT_PORTS

PROFILES = ("man", "atis", "rfc")
CRL_POLICIES = ("fail-closed", "fail-open")
DAY = 86400.0


@dataclass(frozen=True)
class StoreOptions:
    """What a CertStore is built from (docs/certificates.md says what each one does).

    Sources are kept as given (paths, PEM/DER bytes or objects) so that a store built again from
    the same options reads the files again.
    """

    trust_anchors: Any
    certificates: Union[None, str, os.PathLike, Mapping[str, bytes]] = None
    crls: Any = None
    cache_dir: Optional[Union[str, os.PathLike]] = None
    allow_http: bool = False
    profile: str = "man"
    fetch: bool = True
    allow_loopback: bool = False
    tls_ca: Any = None
    connect_timeout: float = 2.0
    total_timeout: float = 4.0
    max_bytes: int = 64 * 1024
    https_ports: Tuple[int, ...] = DEFAULT_PORTS
    min_ttl: float = DAY
    negative_ttl: float = 30.0
    refresh_ahead: float = 0.9
    cache_dir_max_files: int = 10000
    crl_policy: Optional[str] = None  # None: "fail-closed" for profile "man", "fail-open" otherwise
    crl_refresh: float = DAY
    crl_signers: Any = None
    accept_missing_policy: bool = True
    spc_allowlist: Optional[FrozenSet[str]] = None  # upper case: SPCs compare case-insensitively
    max_entries: int = 10000

    @classmethod
    def create(cls, **kw: Any) -> "StoreOptions":
        """Options from keyword arguments; ConfigError for a name that is not an option."""
        names = [f.name for f in dataclasses.fields(cls)]
        for name in kw:
            if name not in names:
                near = difflib.get_close_matches(name, names, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ConfigError(f"{name!r} is not a certificate store option{hint}")
        if "trust_anchors" not in kw or kw["trust_anchors"] is None:
            raise ConfigError("trust_anchors is required (no implicit system roots)")
        return cls(**kw)

    def __post_init__(self) -> None:
        for name in ("allow_http", "fetch", "allow_loopback", "accept_missing_policy"):
            _check(name, getattr(self, name), isinstance(getattr(self, name), bool), "True or False")
        for name in ("connect_timeout", "total_timeout", "min_ttl", "negative_ttl", "crl_refresh"):
            value = getattr(self, name)
            _check(name, value, _number(value) and value > 0, "a positive number of seconds")
            self._set(name, float(value))
        for name in ("max_bytes", "cache_dir_max_files", "max_entries"):
            value = getattr(self, name)
            _check(name, value, isinstance(value, int) and not isinstance(value, bool) and value > 0,
                   "a positive int")
        _check("refresh_ahead", self.refresh_ahead, _number(self.refresh_ahead) and 0 < self.refresh_ahead <= 1,
               "a fraction in (0, 1]; 1 turns background refresh off")
        self._set("refresh_ahead", float(self.refresh_ahead))
        _check("profile", self.profile, self.profile in PROFILES, f"one of {', '.join(PROFILES)}")
        if self.crl_policy is None:
            self._set("crl_policy", "fail-closed" if self.profile == "man" else "fail-open")
        _check("crl_policy", self.crl_policy, self.crl_policy in CRL_POLICIES, f"one of {', '.join(CRL_POLICIES)}")
        ports = _tuple(self.https_ports)
        _check("https_ports", self.https_ports, bool(ports) and all(
            isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports), "a list of TCP ports")
        self._set("https_ports", ports)
        if self.spc_allowlist is not None:
            spcs = _tuple(self.spc_allowlist)
            _check("spc_allowlist", self.spc_allowlist, spcs is not None and all(isinstance(s, str) for s in spcs),
                   "a list of SPC strings")
            self._set("spc_allowlist", frozenset(s.upper() for s in spcs))
        certs = self.certificates
        if isinstance(certs, Mapping):
            self._set("certificates", types.MappingProxyType(_chains(certs)))
        elif certs is not None and not isinstance(certs, (str, os.PathLike)):
            raise ConfigError("certificates must be a directory path or a mapping {x5u_url: pem_chain}")
        _check("cache_dir", self.cache_dir, self.cache_dir is None or isinstance(self.cache_dir, (str, os.PathLike)),
               "a directory path")

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # normalising a frozen value while it is built


def _check(name: str, value: Any, ok: bool, want: str) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {want}, not {value!r}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _tuple(value: Any) -> Optional[tuple]:
    """A list given as any iterable but a string (a string is one name, not a list of letters)."""
    if isinstance(value, (str, bytes)):
        return None
    try:
        return tuple(value)
    except TypeError:
        return None


def _chains(mapping: Mapping) -> dict:
    out = {}
    for url, chain in mapping.items():
        if not isinstance(url, str):
            raise ConfigError("certificates mapping keys must be x5u URL strings")
        if isinstance(chain, str):
            chain = chain.encode()
        if not isinstance(chain, bytes):
            raise ConfigError(f"certificates[{url!r}] must be PEM/DER bytes")
        out[url] = chain
    return out
