"""Reading a configuration option that lists certificates or CRLs as paths, bytes or objects."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable, List

from ..errors import ConfigError


def load_items(items: Any, ready: type, parse: Callable[[bytes], list], what: str, kind: str) -> List[Any]:
    """Objects of type `ready` from paths, PEM/DER bytes or ready objects; ConfigError naming the
    culprit when one cannot be read (`what` names the option's items, `kind` what they hold)."""
    if isinstance(items, (str, bytes, os.PathLike, ready)):
        items = [items]
    if not isinstance(items, Iterable):
        raise ConfigError(f"{what} must be given as a list of paths, PEM/DER bytes or objects")
    out: List[Any] = []
    for item in items:
        if isinstance(item, ready):
            out.append(item)
            continue
        if isinstance(item, (str, os.PathLike)):
            try:
                data, where = Path(item).read_bytes(), str(item)
            except OSError as e:
                raise ConfigError(f"cannot read {what} {item}: {e.strerror}") from None
        elif isinstance(item, bytes):
            data, where = item, f"{what} bytes"
        else:
            raise ConfigError(f"a {what} must be a path or PEM/DER bytes, not {type(item).__name__}")
        try:
            out.extend(parse(data))
        except ValueError as e:
            raise ConfigError(f"{where} holds no readable {kind}: {e}") from None
    return out
