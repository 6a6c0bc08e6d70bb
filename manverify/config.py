"""One configuration document for every integration: the Kamailio app and `manverify serve`.

A JSON object. The keys every integration reads (the Verifier's trust configuration):

  trust_anchors     list of PEM file paths (required)
  certificates      directory of the MAN local copy, or {x5u: pem file path}
  crls, cache_dir, max_age, allow_http, profile   as manverify.Verifier; cache_dir is shared by
                    every worker process, so one fetch serves them all
  verifier_options  extra Verifier/CertStore keywords (e.g. {"allow_loopback": true})
  policy            manverify.policy.Policy settings, e.g. {"role": "monitoring"}

Each integration adds its own keys (manverify.integrations.kamailio, manverify.serve) and checks
the whole document with check_keys(), so a misspelt key is refused wherever it appears.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, List, Mapping

from .errors import ConfigError
from .policy import Policy
from .reload import config_files

VERIFIER_KEYS = ("trust_anchors", "certificates", "crls", "cache_dir", "max_age", "allow_http", "profile")
COMMON_KEYS = frozenset(VERIFIER_KEYS) | {"verifier_options", "policy"}


def load(path: "str | os.PathLike") -> dict:
    """Read a JSON configuration file (ConfigError when it cannot be read or is not an object)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the manverify configuration {path}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data


def check_keys(config: Any, own: Iterable[str], what: str) -> None:
    """ConfigError unless `config` is a mapping of the common keys and `own`, with trust_anchors."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"{what} needs a configuration mapping (a JSON object)")
    unknown = set(config) - COMMON_KEYS - set(own)
    if unknown:
        raise ConfigError(f"unknown configuration key(s) {sorted(unknown)}")
    if "trust_anchors" not in config:
        raise ConfigError("trust_anchors is required")


def build_policy(config: Mapping[str, Any]) -> Policy:
    settings = config.get("policy") or {}
    if not isinstance(settings, Mapping):
        raise ConfigError("policy must be a JSON object of Policy settings")
    return Policy.from_dict(dict(settings))


def build_verifier(config: Mapping[str, Any]):
    """The Verifier a worker uses, from the configuration's verifier keys."""
    from .verifier import Verifier

    kw = {k: config[k] for k in VERIFIER_KEYS if k in config}
    certs = kw.get("certificates")
    if isinstance(certs, Mapping):  # {x5u: file} → {x5u: bytes}
        kw["certificates"] = {url: read_file(path, f"certificates[{url!r}]") for url, path in certs.items()}
    extra = config.get("verifier_options") or {}
    if not isinstance(extra, Mapping):
        raise ConfigError("verifier_options must be a JSON object")
    return Verifier(**kw, **extra)


def build_screen(config: Mapping[str, Any], base: "str | os.PathLike" = ".", reload: bool = True):
    """The Screen the configuration's `screening` mapping describes (None without one); files
    named in it are read relative to `base`, the JSON file's folder. ConfigError names the key of
    a mistake."""
    if config.get("screening") is None:
        return None
    from .screen.engine import Screen  # only those who screen need its dependencies

    return Screen.from_dict(config["screening"], base, reload=reload)


def same_verifier(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two configurations build the same Verifier (given unchanged trust files)."""
    return all(a.get(k) == b.get(k) for k in (*VERIFIER_KEYS, "verifier_options"))


def read_file(path: Any, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except (OSError, TypeError) as e:
        raise ConfigError(f"{what}: cannot read {path!r}: {e}") from None


def watched_files(path: "str | os.PathLike", config: Mapping[str, Any], *more: Any) -> List[Path]:
    """The configuration file, then every trust file it names (and `more` options naming files):
    what manverify.reload.Watch looks at."""
    options = config.get("verifier_options") or {}
    return [Path(path)] + config_files(config.get("trust_anchors"), config.get("certificates"),
                                       options.get("crl_signers") if isinstance(options, Mapping) else None,
                                       *more)
