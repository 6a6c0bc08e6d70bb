"""Print pip constraints pinning each runtime dependency at its declared floor (pyproject.toml):
`name>=X` becomes `name==X`, so a CI step can install exactly the oldest versions we claim.

Usage: python tools/floors.py [--except NAME ...] > floors.txt   (Python >= 3.11, for tomllib)
--except leaves a dependency free where its floor has no build for the Python under test.
"""
import re
import sys
import tomllib
from pathlib import Path

args = sys.argv[1:]
excepted = set(args[args.index("--except") + 1:]) if "--except" in args else set()
project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
for requirement in project["dependencies"]:
    found = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9A-Za-z.]*)", requirement.replace(" ", ""))
    if found is None:
        sys.exit(f"tools/floors.py: {requirement!r} does not state a floor as NAME>=VERSION")
    if found.group(1) not in excepted:
        print(f"{found.group(1)}=={found.group(2)}")
