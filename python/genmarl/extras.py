"""Optional dependencies (the extras of ``pip install 'genmarl[...]'``), checked before any work."""

from __future__ import annotations

import importlib.util


def require(what: str, modules: tuple[str, ...], extra: str) -> None:
    """Raises ImportError ``"{what} needs {missing}: pip install 'genmarl[{extra}]'"`` when one of
    ``modules`` cannot be imported (found without importing it)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"{what} needs {', '.join(missing)}: pip install 'genmarl[{extra}]'")
