"""Kamailio app_python3 KEMI script: manverify verifies every initial INVITE, then rejects or
relays it (kamailio.cfg), or, with "mode": "redirect" in the JSON, answers it with a 302 or the
rejection (kamailio-redirect.cfg).

app_python3 embeds Debian's /usr/bin/python3, not whatever `python` is on PATH, so manverify is
installed in a virtual environment made with that interpreter:

    /usr/bin/python3 -m venv /opt/manverify && /opt/manverify/bin/pip install manverify

and the configuration names it ("venv": "/opt/manverify"); its site-packages are added with
site.addsitedir(), which also processes .pth files (PYTHONPATH would not), ahead of Debian's
dist-packages. Start Kamailio with a PATH whose python3 is /usr/bin/python3 (as systemd does): the
embedded interpreter finds its standard library through it. The configuration is the
JSON file named by $MANVERIFY_KAMAILIO_CONFIG (default /etc/manverify/kamailio.json); see
manverify.integrations.kamailio for its keys.
"""
import glob
import json
import os
import site
import sys

_PATH = os.environ.get("MANVERIFY_KAMAILIO_CONFIG") or "/etc/manverify/kamailio.json"
with open(_PATH, encoding="utf-8") as _f:
    _CONFIG = json.load(_f)
if _CONFIG.get("venv"):
    _before = list(sys.path)
    for _d in sorted(glob.glob(os.path.join(_CONFIG["venv"], "lib", "python3*", "site-packages"))):
        site.addsitedir(_d)
    # addsitedir appends; the venv must win over Debian's dist-packages (an older cryptography
    # may be installed there as python3-cryptography).
    sys.path[:] = [p for p in sys.path if p not in _before] + _before

from manverify.integrations.kamailio import KemiApp  # noqa: E402 (needs the site dirs above)
from manverify.integrations.redirect import RedirectApp  # noqa: E402


def mod_init():
    """Called once by app_python3 in Kamailio's main process, before the workers fork."""
    app = RedirectApp if _CONFIG.get("mode") == "redirect" else KemiApp  # each refuses the other's mode
    return app(_CONFIG, path=_PATH)  # path: the workers reload the file when it changes
