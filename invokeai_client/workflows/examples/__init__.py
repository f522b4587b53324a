"""Model-free example workflows in the GUI's export format (they run on any InvokeAI 6.x).

``path("image-pipeline")`` gives the file of one; :func:`names` lists them.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    """The example names (file names without ``.json``)."""
    return sorted(p.stem for p in HERE.glob("*.json"))


def path(name: str) -> Path:
    """The file of example ``name`` (FileNotFoundError naming the known ones)."""
    candidate = HERE / f"{name.removesuffix('.json')}.json"
    if not candidate.is_file():
        raise FileNotFoundError(f"no example workflow {name!r}; known: {names()}")
    return candidate
