"""`manverify serve --config FILE`: the STI verification (and signing) service SBCs call over HTTP.

    POST /stir/v1/verification   ATIS-1000082 or 3GPP Ms body; answered in the request's dialect
    POST /stir/v1/signing        only when a signer is configured
    POST /screening/v1/check     only when screening is configured (manverify.serve.screening)
    GET  /healthz  /readyz  /metrics

The configuration is one JSON document: the keys every integration reads (manverify.config) plus
`signer` and `server` (manverify.serve.settings). The HTTP server is uvicorn with its C parser
(httptools) and uvloop, chosen by measurement (docs/serving.md); its supervisor runs
`server.workers` processes on one listening socket (docs/http-path.md: how the HTTP path is built,
and why uvicorn is pinned), and:
  SIGTERM / SIGINT  stop accepting, let in-flight requests finish, exit 0
  SIGHUP            replace each worker by one built from the configuration as it is now, the
                    new one ready before the old one stops (no request dropped; a configuration
                    that cannot start keeps the old worker); with one worker (no supervisor),
                    that worker reads its configuration again in place
Each worker also reloads the configuration and the trust files it names when they change
(manverify.reload), without a restart. Workers share `cache_dir`, and PROMETHEUS_MULTIPROC_DIR
(server.metrics_dir, or a fresh temporary directory) so /metrics answers the sum of all workers.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile

from .. import config as _config
from ..errors import ConfigError
from . import settings

log = logging.getLogger("manverify.serve")


def run(path: str) -> int:
    """Check the configuration, then serve until SIGTERM. ConfigError for a bad configuration."""
    config = _config.load(path)
    setup = settings.build(config)  # every mistake now, before any worker starts
    from . import screening

    screening.validate(config, path)
    server = setup.server
    try:
        import uvicorn
        from uvicorn.config import LOGGING_CONFIG
    except ImportError:
        uvicorn = None
    if uvicorn is None or not _has("prometheus_client"):  # not imported here: see below
        raise ConfigError("manverify serve needs its HTTP server and prometheus_client: "
                          "pip install 'manverify[serve]'")
    metrics_dir, own_dir = _metrics_dir(server)
    # Before anything imports prometheus_client: it picks its multiprocess values at import time
    # (with one worker, the application runs in this very process).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    os.environ[_app().CONFIG_ENV] = os.path.abspath(path)
    from . import protocol

    os.environ[protocol.HEADER_TIME_ENV] = str(server.limits["header_time"])
    os.environ[protocol.HEADER_BYTES_ENV] = str(server.limits["header"])
    os.environ[protocol.REQUEST_TIME_ENV] = str(server.limits["request_time"])
    limits = server.limits
    # uvicorn applies this in the supervisor and again in every worker it spawns: manverify's own
    # records (reloads, refused configurations, fetch trouble, 500s) go to stderr with the pid.
    log_config = dict(LOGGING_CONFIG, disable_existing_loggers=False)
    log_config["formatters"] = dict(LOGGING_CONFIG["formatters"], manverify={
        "format": "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"})
    log_config["handlers"] = dict(LOGGING_CONFIG["handlers"], manverify={
        "class": "logging.StreamHandler", "formatter": "manverify", "stream": "ext://sys.stderr"})
    log_config["loggers"] = dict(LOGGING_CONFIG["loggers"], manverify={
        "handlers": ["manverify"], "level": logging.getLevelName(server.log_level), "propagate": False})
    tls = {}
    if server.tls_cert:
        import ssl

        # uvicorn's own context would have no TLS 1.2 floor: each worker builds server_context()
        tls = dict(ssl_certfile=server.tls_cert, ssl_keyfile=server.tls_key, ssl_context_factory=tls_context)
        if server.client_ca:
            tls.update(ssl_ca_certs=server.client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
    if server.workers == 1:
        # uvicorn runs one worker in this process, without its supervisor: SIGHUP (whose default
        # is to end the process) re-reads the configuration here instead, and SIGTERM, which
        # uvicorn raises again once it has shut down gracefully, ends run() with 0.
        import signal

        signal.signal(signal.SIGHUP, _app().reload_all)
        signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        uvicorn.run(
            "manverify.serve.app:from_environment", factory=True,
            host=server.host, port=server.port, workers=server.workers,
            http="manverify.serve.protocol:Protocol", ws="none", loop="uvloop" if _has("uvloop") else "asyncio",
            lifespan="on", access_log=False, server_header=False, date_header=True, log_config=log_config,
            log_level=server.log_level, limit_concurrency=limits["connections"],
            timeout_keep_alive=limits["keep_alive"], timeout_graceful_shutdown=limits["request_time"] + 5,
            h11_max_incomplete_event_size=limits["header"], **tls)
    finally:
        if own_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def tls_context(config, _uvicorn_default=None):
    """uvicorn's ssl_context_factory (a module-level function: workers are spawned, it is pickled)."""
    return settings.tls_context(config.ssl_certfile, config.ssl_keyfile, config.ssl_ca_certs)


def _app():
    from . import app

    return app


def _metrics_dir(server: settings.ServerSettings):
    """The directory the workers' metrics files go to, emptied: (path, whether we made it)."""
    if server.metrics_dir is None:
        return tempfile.mkdtemp(prefix="manverify-metrics-"), True
    os.makedirs(server.metrics_dir, exist_ok=True)
    for name in os.listdir(server.metrics_dir):
        if name.endswith(".db"):
            os.unlink(os.path.join(server.metrics_dir, name))
    return server.metrics_dir, False


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main(argv=None) -> int:  # python -m manverify.serve FILE
    try:
        return run((argv or sys.argv[1:])[0])
    except ConfigError as e:
        print(f"manverify serve: {e}", file=sys.stderr)
        return 2
