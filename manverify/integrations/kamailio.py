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

Configuration (JSON object): the keys every integration reads (manverify.config: trust_anchors,
certificates, crls, cache_dir, max_age, allow_http, profile, verifier_options, policy), and:
  entry             "national" (default) or "international": where calls enter by default
  international_sources  source addresses/networks ($si) whose calls are "international"
  next_hop          SIP URI every request is relayed to ($du); default: the Request-URI
  mode              "relay" (default, KemiApp) or "redirect" (manverify.integrations.redirect:
                    answer each INVITE with 302 or the rejection, never relay)
  venv              read by the KEMI script only: the virtual environment manverify is in
  log_decisions     log one line per INVITE decision (default false)
  log_level         manverify's own log records (logging.getLogger("manverify")) from this level
                    on go to Kamailio's log through KSR: "WARNING" (default), "INFO", "DEBUG"
  reload            when the app knows its file (KemiApp(config, path=...)): re-read it, and the
                    trust anchor / CRL signer / local copy files it names, when they change
                    (default true). A worker looks at most once a second, on its next INVITE;
                    a bad file keeps the configuration in use and the worker logs why.
  metrics           export this worker's counters to Prometheus (manverify.metrics; default
                    false). Kamailio must run with PROMETHEUS_MULTIPROC_DIR set to an empty
                    directory, and `python -m manverify.metrics --port 9464` (same variable)
                    serves the sum of every worker. A worker writes its counts out at its first
                    INVITE a second or more after the last write (an idle worker holds its last
                    second's counts until its next call).
  screening         screen the calls the policy lets continue (manverify.screen): the mapping
                    Screen.from_dict() takes, file names relative to the JSON file's folder. Each
                    worker builds its own Screen after fork (its own Redis connections); a call it
                    rejects gets the screening code (608) with a Reason header naming the rules, a
                    tagged call the tag header, a masked one Privacy: id, a diverted one is
                    relayed to screening.divert_to. Lists and the MAJNUM file reload on change;
                    a change to the `screening` mapping itself builds a new Screen (local
                    counters start again from zero; shared ones in Redis do not).
  partners          {"partner name": ["address or network", ...]}: the interconnect partner a
                    call comes from ($si), for screening's per-partner lists

The handler never raises into Kamailio: an internal error answers 500 and is logged with the
traceback; an INVITE is never dropped silently.
"""
from __future__ import annotations

import collections
import ipaddress
import logging
import os
import threading
import time
import traceback
from typing import Any, Mapping, NamedTuple, Optional, Tuple

from .. import sip
from ..errors import ConfigError
from ..policy import ENTRIES, Policy
from ..config import build_policy, build_screen, build_verifier, check_keys, same_verifier
from ..config import load as load_config
from ..config import watched_files as _watched_files
from ..reload import Watch

_OWN = {"entry", "international_sources", "next_hop", "venv", "log_decisions", "log_level", "reload", "metrics",
        "mode", "screening", "partners"}
RELOAD_INTERVAL = 1.0  # seconds between two looks at the configuration files, per worker
__all__ = ["KemiApp", "KSRLogHandler", "build_verifier", "from_environment", "load_config"]


class _Setup(NamedTuple):
    """What the configuration decides, validated; a worker swaps it as a whole on reload."""

    config: dict
    policy: Policy
    entry: str
    international: Tuple[Any, ...]
    next_hop: Optional[str]
    log_decisions: bool
    log_level: int
    verifier: Any = None  # built in each worker, never in Kamailio's main process
    partners: Tuple[Tuple[Any, str], ...] = ()  # (network, partner name), in configuration order
    screen: Any = None  # manverify.screen.Screen, built in each worker like the verifier


def _partners(value: Any) -> Tuple[Tuple[Any, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigError('partners must map a partner name to its addresses: {"name": ["192.0.2.0/24"]}')
    out = []
    for name, nets in value.items():
        if isinstance(nets, str) or not isinstance(nets, (list, tuple)):
            raise ConfigError(f"partners.{name} must be a list of addresses or networks")
        try:
            out.extend((ipaddress.ip_network(n, strict=False), name) for n in nets)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"partners.{name}: {e}") from None
    return tuple(out)


def _setup(config: Mapping[str, Any]) -> _Setup:
    check_keys(config, _OWN, "the Kamailio integration")
    policy = build_policy(config)
    entry = config.get("entry", "national")
    if entry not in ENTRIES:
        raise ConfigError(f"entry must be one of {', '.join(ENTRIES)}")
    try:
        international = tuple(ipaddress.ip_network(n, strict=False) for n in config.get("international_sources") or ())
    except (TypeError, ValueError) as e:
        raise ConfigError(f"international_sources: {e}") from None
    next_hop = config.get("next_hop")
    if next_hop is not None and not (isinstance(next_hop, str) and next_hop.startswith("sip")):
        raise ConfigError("next_hop must be a SIP URI such as sip:127.0.0.1:5080")
    level = logging.getLevelName(str(config.get("log_level", "WARNING")).upper())
    if not isinstance(level, int):
        raise ConfigError("log_level must be DEBUG, INFO, WARNING or ERROR")
    if config.get("metrics"):
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            raise ConfigError("metrics needs prometheus_client: install manverify[metrics] in the venv") from None
    return _Setup(dict(config), policy, entry, international, next_hop, bool(config.get("log_decisions", False)), level,
                  partners=_partners(config.get("partners")))


class KSRLogHandler(logging.Handler):
    """manverify's log records into Kamailio's log (KSR.err / warn / info / dbg).

    KSR is called only from the worker's own thread (the one running the KEMI callbacks):
    records from manverify's background threads (certificate refresh, metrics) wait in a short
    queue, oldest dropped first, until the worker's next look (drain())."""

    _SEND = ((logging.ERROR, "err"), (logging.WARNING, "warn"), (logging.INFO, "info"), (0, "dbg"))

    def __init__(self, ksr: Any, max_pending: int = 100):
        super().__init__()
        self.ksr = ksr
        self.thread = threading.get_ident()
        self.pending: collections.deque = collections.deque(maxlen=max_pending)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            item = (record.levelno, "manverify: %s\n" % self.format(record).replace("\n", " | "))
        except Exception:  # noqa: BLE001 — logging must never break a call
            self.handleError(record)
            return
        if threading.get_ident() == self.thread:
            self.drain()
            self._send(*item)
        else:
            self.pending.append(item)

    def drain(self) -> None:
        while self.pending:
            self._send(*self.pending.popleft())

    def _send(self, level: int, text: str) -> None:
        name = next(fn for floor, fn in self._SEND if level >= floor)
        try:
            getattr(self.ksr, name)(text)
        except Exception:  # noqa: BLE001 — never raise into Kamailio
            pass


class KemiApp:
    """The object a KEMI script's mod_init() returns. `ksr` is the KSR module (tests pass a fake).
    `path`: the JSON file the configuration came from; with it, workers reload it on change."""

    mode = "relay"  # the configuration's "mode" this class serves

    def __init__(self, config: Mapping[str, Any], ksr: Any = None, verifier_factory=build_verifier,
                 path: Optional[str] = None, screen_factory=build_screen):
        self._setup = _setup(config)
        self._check_mode(self._setup.config)
        self.path = path
        self._ksr = ksr
        self._factory = verifier_factory
        self._pid = 0
        self._watch: Optional[Watch] = None
        self._next_look = 0.0
        self._log: Optional[KSRLogHandler] = None
        self._screen_factory = screen_factory
        self._base = os.path.dirname(os.path.abspath(path)) if path is not None else "."
        # Fail at start-up (in Kamailio's main process) on a bad trust or screening configuration,
        # rather than in every worker on the first call. No thread starts here (the screen does
        # not watch its files, and is closed): Kamailio forks after this.
        verifier_factory(self._setup.config)
        screen = screen_factory(self._setup.config, self._base, reload=False)
        if screen is not None:
            screen.close()

    def _check_mode(self, config: Mapping[str, Any]) -> None:
        """A configuration written for the other mode is refused, never served the wrong way."""
        mode = config.get("mode", "relay")
        if mode != self.mode:
            raise ConfigError(f'mode {mode!r} is not served by {type(self).__name__}: "relay" is KemiApp, '
                              '"redirect" is manverify.integrations.redirect.RedirectApp')

    # what the configuration in use says (one snapshot: self._setup)
    config = property(lambda self: self._setup.config)
    policy = property(lambda self: self._setup.policy)
    entry = property(lambda self: self._setup.entry)
    next_hop = property(lambda self: self._setup.next_hop)
    log_decisions = property(lambda self: self._setup.log_decisions)

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
        replies never enter Python. Returns 1 to relay (header edits applied; $du set when screening
        diverts the call), -1 when a reply was sent (the rejection, or 500 on an internal error)."""
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
        if self._pid != os.getpid():
            self._start_worker()
        return self._setup.verifier

    def _start_worker(self) -> None:
        setup = self._setup
        self._setup = setup._replace(verifier=self._factory(setup.config),
                                     screen=self._screen_factory(setup.config, self._base))
        self._pid = os.getpid()
        root = logging.getLogger("manverify")
        if self._log is not None:
            root.removeHandler(self._log)
            self._log = None
        try:
            self._log = KSRLogHandler(self.ksr)
        except ImportError:  # not inside Kamailio (no KSR module): the host's logging stays as it is
            pass
        else:
            root.addHandler(self._log)
            root.setLevel(setup.log_level)
        if setup.config.get("metrics"):
            from .. import metrics

            metrics.register()
            if self._setup.screen is not None:
                metrics.track_screen(self._setup.screen)
        self._watch = None
        if self.path is not None and setup.config.get("reload", True):
            self._watch = Watch(_watched_files(self.path, setup.config), self._reread, self._use,
                                f"manverify configuration {self.path}", background=False)
            self._next_look = time.monotonic() + RELOAD_INTERVAL

    def look(self) -> None:
        """Once a second at most, on the worker's own thread (before an INVITE): reload the
        configuration if a file changed, pass on queued log records, write the counters out.

        Kamailio 5.6's app_python3 keeps the GIL between callbacks, so a worker's background
        threads run only while its Python waits on I/O or native code: what must happen
        regardless happens here."""
        self._next_look = time.monotonic() + RELOAD_INTERVAL
        if self._watch is not None:
            self._watch.check()
        # The screen's list and MAJNUM watches, here too: the ticker thread seldom gets the GIL.
        if self._setup.screen is not None:
            self._setup.screen.look()
        if self._log is not None:
            self._log.drain()
        if self._setup.config.get("metrics"):
            from .. import metrics

            metrics.flush()

    def _reread(self) -> _Setup:
        config = load_config(self.path)
        new = _setup(config)
        self._check_mode(config)
        old = self._setup
        if same_verifier(config, old.config) and set(self._watch.changed) <= {self._watch.paths[0]}:  # only the JSON, not the trust
            verifier = old.verifier
        else:
            verifier = self._factory(new.config)
        # the Screen last: a verifier that fails to build leaves no new Screen (watch threads, a
        # store's connections) behind
        same_screen = config.get("screening") == old.config.get("screening")
        return new._replace(verifier=verifier,
                            screen=old.screen if same_screen else self._screen_factory(new.config, self._base))

    def _use(self, new: _Setup) -> None:
        old = self._setup
        self._setup = new  # one assignment: a call uses the old setup or the new one
        logging.getLogger("manverify").setLevel(new.log_level)
        if _watched_files(self.path, new.config) != list(self._watch.paths):
            self._watch = Watch(_watched_files(self.path, new.config), self._reread, self._use,
                                self._watch.what, background=False)
        new_screen = new.screen is not old.screen
        if (new.verifier is not old.verifier or new_screen) and new.config.get("metrics"):
            from .. import metrics

            metrics.flush()  # the old Verifier's and Screen's last counts, before they go
            if new_screen and new.screen is not None:
                metrics.track_screen(new.screen)
        if new_screen and old.screen is not None:
            old.screen.close()

    @staticmethod
    def by_source(source: Optional[str], s: _Setup) -> Tuple[str, Optional[str]]:
        """The call's entry (international when its source address is in international_sources)
        and the partner whose addresses hold it, if any: one parse of $si for both."""
        if not source or not (s.international or s.partners):
            return s.entry, None
        try:
            addr = ipaddress.ip_address(source.strip("[]"))
        except ValueError:
            return s.entry, None
        entry = "international" if any(addr in net for net in s.international) else s.entry
        return entry, next((name for net, name in s.partners if addr in net), None)

    def _route(self, ksr) -> int:
        # ACKs to this proxy's own replies are absorbed by sl/tm before or inside t_relay; the
        # other requests (ACK to 2xx, CANCEL, in-dialog) are relayed unchanged.
        method = ksr.pv.get("$rm")
        decision = None
        if method == "INVITE" and not ksr.pv.get("$tt"):
            if ksr.tmx.t_precheck_trans() > 0:  # a retransmission of an INVITE being handled
                ksr.tm.t_check_trans()
                return 1
            decision = self._decide(ksr)
            if decision is None:
                return 1
        self._relay(ksr, divert=decision is not None and decision.divert_to is not None)
        return 1

    def _decide(self, ksr):
        """Verify the current INVITE; reply and return None, or apply the edits and return the
        Decision (a call screening diverts gets its destination, $du, set here)."""
        decision = self._decision(ksr)
        if decision.reject:
            if decision.reason_header:  # screening names its rules (RFC 3326 Reason)
                ksr.hdr.append_to_reply(f"Reason: {decision.reason_header}\r\n")
            ksr.sl.sl_send_reply(decision.code, decision.reason)
            return None
        for name in decision.remove_headers:
            ksr.hdr.remove(name)
        for name, value in decision.add_headers:
            ksr.hdr.append(f"{name}: {value}\r\n")
        if decision.divert_to:
            ksr.pv.sets("$du", decision.divert_to)
        return decision

    def _decision(self, ksr):
        """manverify.sip.check() on the current INVITE, with this worker's configuration."""
        if time.monotonic() >= self._next_look:
            self.look()
        verifier = self.verifier()
        s = self._setup
        raw = self._message(ksr)
        entry, partner = self.by_source(ksr.pv.get("$si"), s)
        decision = sip.check(raw, verifier, s.policy, entry=entry, screen=s.screen, partner=partner)
        if s.log_decisions:
            screened = decision.screening
            ksr.info("manverify: %s %s %s rule=%s verstat=%s detail=%s%s\n" % (
                ksr.pv.get("$ci"), decision.action, decision.code or "", decision.rule,
                decision.verstat, decision.detail,
                "" if screened is None else f" screening={screened.action}:{','.join(screened.rules) or '-'}"))
        return decision

    @staticmethod
    def _message(ksr):
        """The received message ($mb). app_python3 decodes it as UTF-8 and raises on other bytes;
        those messages are read hex-encoded instead, so binary headers get a decision too."""
        try:
            return ksr.pv.get("$mb") or ""
        except UnicodeDecodeError:
            return bytes.fromhex(ksr.pv.get("$(mb{s.encode.hexa})") or "")

    def _relay(self, ksr, divert: bool = False) -> None:
        next_hop = self._setup.next_hop
        if next_hop and not divert:
            ksr.pv.sets("$du", next_hop)
        if ksr.tm.t_relay() < 0:
            ksr.sl.sl_reply_error()


def from_environment(variable: str = "MANVERIFY_KAMAILIO_CONFIG",
                     default: str = "/etc/manverify/kamailio.json") -> KemiApp:
    """KemiApp from the JSON file named by $MANVERIFY_KAMAILIO_CONFIG (or the default path),
    reloaded by the workers when it changes."""
    path = os.environ.get(variable) or default
    return KemiApp(load_config(path), path=path)
