"""Kamailio (app_python3 KEMI) integration: verify each initial INVITE, then reject or relay.

The KEMI script Kamailio loads (examples/kamailio/manverify_kemi.py) reads a JSON configuration,
adds the virtual environment manverify is installed in with site.addsitedir(), and returns
KemiApp(config) from mod_init(). Kamailio then calls, in every SIP worker process:

  child_init(rank)        → the Verifier is built here, once per worker, after fork
  ksr_request_route(msg)  → initial INVITE: manverify.sip.check() on the raw message ($mb), then
                            reply with the decision's code, or relay with verstat on
                            P-Asserted-Identity (and Reason / Privacy when the policy says so);
                            other requests are relayed unchanged
  ksr_reply_route, ksr_onsend_route → defined because tm calls them when relaying

Configuration (JSON object):
  trust_anchors     list of PEM file paths (required)
  certificates      directory of the MAN local copy, or {x5u: pem file path}
  crls, cache_dir, max_age, allow_http, profile   as manverify.Verifier; cache_dir is shared by
                    every worker, so one fetch serves them all
  verifier_options  extra Verifier/CertStore keywords (e.g. {"allow_loopback": true})
  policy            manverify.policy.Policy settings, e.g. {"role": "monitoring"}
  entry             "national" (default) or "international": where calls enter by default
  international_sources  source addresses/networks ($si) whose calls are "international"
  next_hop          SIP URI every request is relayed to ($du); default: the Request-URI
  venv              read by the KEMI script only: the virtual environment manverify is in
  log_decisions     log one line per INVITE decision (default false)

The handler never raises into Kamailio: an internal error answers 500 and is logged with the
traceback; an INVITE is never dropped silently.
"""
from __future__ import annotations

import ipaddress
import json
import os
import traceback
from typing import Any, Mapping, Optional

from .. import sip
from ..errors import ConfigError
from ..policy import ENTRIES, Policy

_VERIFIER_KEYS = ("trust_anchors", "certificates", "crls", "cache_dir", "max_age", "allow_http", "profile")
_KNOWN = set(_VERIFIER_KEYS) | {"verifier_options", "policy", "entry", "international_sources", "next_hop",
                                "venv", "log_decisions"}


def load_config(path: str) -> dict:
    """Read a JSON configuration file (ConfigError when it cannot be read)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the manverify Kamailio configuration {path}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data


def build_verifier(config: Mapping[str, Any]):
    """The Verifier a worker uses, from the configuration's verifier keys."""
    from ..verifier import Verifier

    kw = {k: config[k] for k in _VERIFIER_KEYS if k in config}
    certs = kw.get("certificates")
    if isinstance(certs, Mapping):  # {x5u: file} → {x5u: bytes}
        loaded = {}
        for url, path in certs.items():
            try:
                with open(path, "rb") as f:
                    loaded[url] = f.read()
            except (OSError, TypeError) as e:
                raise ConfigError(f"certificates[{url!r}]: cannot read {path!r}: {e}") from None
        kw["certificates"] = loaded
    extra = config.get("verifier_options") or {}
    if not isinstance(extra, Mapping):
        raise ConfigError("verifier_options must be a JSON object")
    return Verifier(**kw, **extra)


class KemiApp:
    """The object a KEMI script's mod_init() returns. `ksr` is the KSR module (tests pass a fake)."""

    def __init__(self, config: Mapping[str, Any], ksr: Any = None, verifier_factory=build_verifier):
        if not isinstance(config, Mapping):
            raise ConfigError("the Kamailio integration needs a configuration mapping")
        unknown = set(config) - _KNOWN
        if unknown:
            raise ConfigError(f"unknown configuration key(s) {sorted(unknown)}")
        if "trust_anchors" not in config:
            raise ConfigError("trust_anchors is required")
        self.config = dict(config)
        self.policy = Policy.from_dict(dict(config.get("policy") or {}))
        self.entry = config.get("entry", "national")
        if self.entry not in ENTRIES:
            raise ConfigError(f"entry must be one of {', '.join(ENTRIES)}")
        try:
            self.international = tuple(ipaddress.ip_network(n, strict=False)
                                       for n in config.get("international_sources") or ())
        except (TypeError, ValueError) as e:
            raise ConfigError(f"international_sources: {e}") from None
        self.next_hop = config.get("next_hop")
        if self.next_hop is not None and not (isinstance(self.next_hop, str) and self.next_hop.startswith("sip")):
            raise ConfigError("next_hop must be a SIP URI such as sip:127.0.0.1:5080")
        self.log_decisions = bool(config.get("log_decisions", False))
        self._ksr = ksr
        self._factory = verifier_factory
        self._verifier = None
        self._pid = 0
        # Fail at start-up (in Kamailio's main process) on a bad trust configuration, rather than
        # in every worker on the first call.
        verifier_factory(self.config)

    # ------------------------------------------------------------------ KEMI callbacks
    def child_init(self, rank: int) -> int:
        if rank > 0:  # SIP worker processes; others never route requests
            self.verifier()
        return 0

    def ksr_request_route(self, msg: Any) -> int:
        ksr = self.ksr
        try:
            return self._route(ksr)
        except Exception:  # noqa: BLE001 — the worker must answer, whatever went wrong
            self._internal_error(ksr)
            return 1

    @staticmethod
    def _internal_error(ksr) -> None:
        try:
            ksr.err("manverify: internal error, answering 500: %s\n" % traceback.format_exc().replace("\n", " | "))
            ksr.sl.sl_send_reply(500, "Server Internal Error")
        except Exception:  # noqa: BLE001 — nothing more can be done; never raise into C
            pass

    def verify_invite(self, msg: Any) -> int:
        """For native kamailio.cfg routing (examples/kamailio/kamailio-native.cfg):
        `if (!python_exec("verify_invite")) exit;` on initial INVITEs only, so ACK, BYE and
        replies never enter Python. Returns 1 to relay (header edits applied), -1 when a reply
        was sent (the rejection, or 500 on an internal error)."""
        ksr = self.ksr
        try:
            return 1 if self._decide(ksr) else -1
        except Exception:  # noqa: BLE001 — the worker must answer, whatever went wrong
            self._internal_error(ksr)
            return -1

    def ksr_reply_route(self, msg: Any) -> int:
        return 1

    def ksr_onsend_route(self, msg: Any) -> int:
        return 1

    def ksr_failure_route(self, msg: Any) -> int:
        return 1

    # ------------------------------------------------------------------ helpers
    @property
    def ksr(self):
        if self._ksr is None:
            import KSR  # provided by Kamailio's app_python3 at run time

            self._ksr = KSR
        return self._ksr

    def verifier(self):
        """This process's Verifier, built after fork (a Verifier made before fork is not reused)."""
        pid = os.getpid()
        if self._verifier is None or self._pid != pid:
            self._verifier = self._factory(self.config)
            self._pid = pid
        return self._verifier

    def entry_for(self, source: Optional[str]) -> str:
        if self.international and source:
            try:
                addr = ipaddress.ip_address(source.strip("[]"))
            except ValueError:
                return self.entry
            if any(addr in net for net in self.international):
                return "international"
        return self.entry

    def _route(self, ksr) -> int:
        # ACKs to this proxy's own replies are absorbed by sl/tm before or inside t_relay; the
        # other requests (ACK to 2xx, CANCEL, in-dialog) are relayed unchanged.
        method = ksr.pv.get("$rm")
        if method == "INVITE" and not ksr.pv.get("$tt"):
            if ksr.tmx.t_precheck_trans() > 0:  # a retransmission of an INVITE being handled
                ksr.tm.t_check_trans()
                return 1
            if not self._decide(ksr):
                return 1
        self._relay(ksr)
        return 1

    def _decide(self, ksr) -> bool:
        """Verify the current INVITE; reply and return False, or apply the edits and return True."""
        raw = self._message(ksr)
        decision = sip.check(raw, self.verifier(), self.policy, entry=self.entry_for(ksr.pv.get("$si")))
        if self.log_decisions:
            ksr.info("manverify: %s %s %s rule=%s verstat=%s detail=%s\n" % (
                ksr.pv.get("$ci"), decision.action, decision.code or "", decision.rule,
                decision.verstat, decision.detail))
        if decision.reject:
            ksr.sl.sl_send_reply(decision.code, decision.reason)
            return False
        for name in decision.remove_headers:
            ksr.hdr.remove(name)
        for name, value in decision.add_headers:
            ksr.hdr.append(f"{name}: {value}\r\n")
        return True

    @staticmethod
    def _message(ksr):
        """The received message ($mb). app_python3 decodes it as UTF-8 and raises on other bytes;
        those messages are read hex-encoded instead, so binary headers get a decision too."""
        try:
            return ksr.pv.get("$mb") or ""
        except UnicodeDecodeError:
            return bytes.fromhex(ksr.pv.get("$(mb{s.encode.hexa})") or "")

    def _relay(self, ksr) -> None:
        if self.next_hop:
            ksr.pv.sets("$du", self.next_hop)
        if ksr.tm.t_relay() < 0:
            ksr.sl.sl_reply_error()


def from_environment(variable: str = "MANVERIFY_KAMAILIO_CONFIG",
                     default: str = "/etc/manverify/kamailio.json") -> KemiApp:
    """KemiApp from the JSON file named by $MANVERIFY_KAMAILIO_CONFIG (or the default path)."""
    return KemiApp(load_config(os.environ.get(variable) or default))
