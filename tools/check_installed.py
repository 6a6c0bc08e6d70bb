"""Stop a test run unless manverify comes from the environment's site-packages (not a checkout),
and say which one, with which backend and Python, was tested."""
import sys

import manverify

where = manverify.__file__
print(f"testing manverify {manverify.__version__} from {where} (signature backend {manverify.backend()}), "
      f"Python {sys.version.split()[0]}")
if "-packages" not in where:  # site-packages, or dist-packages for a Debian interpreter
    sys.exit(f"manverify imports from {where}, not from the environment's site-packages")
