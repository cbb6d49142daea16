"""The apps depend one way: accounts <- media <- chats. Read from the import statements, no app loaded.

chats may import media and accounts, media may import accounts, accounts imports neither. media asks
chats what it must know of messages through media.access, which ChatsConfig.ready() fills.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {"accounts": {"chats", "media"}, "media": {"chats"}, "chats": set()}


def imported_modules(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, nested and relative ones too."""
    package = path.relative_to(root).parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            else:
                yield node.lineno, node.module or ""


def app_sources(app: str) -> list[Path]:
    return [
        path
        for path in sorted((ROOT / app).rglob("*.py"))
        if not {"migrations", "tests"} & set(path.relative_to(ROOT).parts)
    ]


def imports_of_apps(app: str) -> list[tuple[str, str]]:
    """("file:line", top-level app) for every import of one of the three apps from `app`'s code."""
    found = []
    for path in app_sources(app):
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            if top in FORBIDDEN and top != app:
                found.append((f"{path.relative_to(ROOT)}:{line}", top))
    return found


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_an_app_imports_only_the_apps_below_it(app):
    # when
    wrong = [(where, target) for where, target in imports_of_apps(app) if target in FORBIDDEN[app]]
    # then
    assert wrong == [], f"{app} must not import {sorted(FORBIDDEN[app])}: " + ", ".join(
        f"{where} imports {target}" for where, target in wrong
    )


def test_the_walk_sees_the_imports_that_are_allowed():
    # Guards the test above against passing because it reads nothing.
    assert {target for _, target in imports_of_apps("chats")} == {"accounts", "media"}
    assert {target for _, target in imports_of_apps("media")} == {"accounts"}


def test_a_relative_import_counts_as_the_module_it_names(tmp_path):
    # given: media/x.py with "from ..chats import models" and a nested "from . import store"
    source = tmp_path / "media" / "x.py"
    source.parent.mkdir()
    source.write_text("from ..chats import models\n\n\ndef f():\n    from . import store\n")
    # when
    modules = sorted(module for _, module in imported_modules(source, root=tmp_path))
    # then
    assert modules == ["chats", "media"]
