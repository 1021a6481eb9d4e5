"""What the store's modules import, read from their source: for the tests that keep the store a
library of its own (checked on the text, not on what happens to be loaded)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import rental_pipeline.store as package


def store_imports() -> Iterator[tuple[str, str, int]]:
    """(the store module's file name, the module it imports, the import's relative level) for every
    import statement in the store, lazy ones inside functions included."""
    for source in sorted(Path(package.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield source.name, alias.name, 0
            elif isinstance(node, ast.ImportFrom):
                yield source.name, node.module or "", node.level
