"""The maps name only what exists: docs/architecture.md and the README's layout.

Three kinds of names are checked:

- a path from the top of the repository (`bot/chat/desk.py`, `integrations/slack/`) or a
  dotted module (`bot.chat.desk.Desk`: `bot/chat/desk.py` must exist);
- a path inside a package (`telegram/delivery.py`), which must end some existing path;
- a bare file name (`delivery.py`): in a table row, next to the row's first path; in the
  README's layout tree, in the folder the tree draws it under; in prose, somewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAPS = ("docs/architecture.md", "README.md")
TOP = ("bot", "integrations", "tools", "tests", "docs")
# Not files of the repository: written while running, or on someone else's machine.
NOT_OURS = ("tests/artifacts/", "/usr/", "/app/")

PATH = re.compile(
    r"(?<![\w./:-])([a-z_][\w-]*(?:/[\w.-]+)*/(?:[\w-]+\.(?:py|md|html|yml|toml))?)(?![\w*])"
)
FILE = re.compile(r"(?<![\w./:-])([a-z_]\w*\.py)\b")
MODULE = re.compile(r"(?<![\w./-])((?:bot|integrations|tools)(?:\.[a-z_]\w*)+)")


def _exists(root: Path, path: str) -> bool:
    return (root / path.rstrip("/")).exists()


def _anywhere(root: Path, tail: str) -> bool:
    """Some file or folder of the project ends with `tail`."""
    tail = tail.rstrip("/")
    name = tail.rsplit("/", 1)[-1]
    return any(
        p.as_posix().endswith("/" + tail)
        for p in root.rglob(name)
        if ".venv" not in p.parts and "node_modules" not in p.parts
    )


def _module_exists(root: Path, dotted: str) -> bool:
    """`bot.chat.desk.Desk` names `bot/chat/desk.py`; `bot.storage` the package; the last parts may
    be what the module defines."""
    parts = dotted.split(".")
    for end in range(len(parts), 1, -1):
        base = root.joinpath(*parts[:end])
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return True
    return False


def _layout_block(text: str) -> tuple[int, list[str]]:
    """The README's layout tree: the first code block after "## Project layout"."""
    start = text.index("## Project layout")
    open_at = text.index("```", start)
    close_at = text.index("```", open_at + 3)
    first_line = text.count("\n", 0, open_at) + 2
    return first_line, text[open_at:close_at].splitlines()[1:]


def _tree_problems(root: Path, text: str, doc: str) -> tuple[list[str], set[int]]:
    """Each name the layout tree draws, in the folder it is drawn under."""
    found: list[str] = []
    first_line, lines = _layout_block(text)
    folder = ""
    for offset, line in enumerate(lines):
        number = first_line + offset
        entry = line.strip().split(" ", 1)[0] if line.strip() else ""
        if line and not line[0].isspace() and entry.endswith("/"):
            folder = entry
            name = entry
        elif line.startswith("  ") and not line.startswith("   ") and entry:
            name = folder + entry
        else:
            name = ""
        if name and not _exists(root, name):
            found.append(f"{doc}:{number} draws {name}, which does not exist")
        here = name if name.endswith("/") else (name.rsplit("/", 1)[0] + "/" if name else folder)
        words = line.strip().split(None, 1)
        for bare in FILE.findall(words[1] if len(words) > 1 else ""):
            if not (_exists(root, here + bare) or _exists(root, folder + bare)):
                found.append(f"{doc}:{number} names {bare} in {here}, which does not exist")
    return found, set(range(first_line, first_line + len(lines)))


def problems(root: Path, doc: str) -> list[str]:
    text = (root / doc).read_text(encoding="utf-8")
    found, tree_lines = ([], set()) if doc != "README.md" else _tree_problems(root, text, doc)
    for number, line in enumerate(text.splitlines(), 1):
        if number in tree_lines:
            continue
        row_paths: list[str] = []
        for path in PATH.findall(line):
            if path.startswith(NOT_OURS):
                continue
            rooted = path.split("/", 1)[0] in TOP
            if rooted and not _exists(root, path):
                found.append(f"{doc}:{number} names {path}, which does not exist")
            elif not rooted and not _anywhere(root, path):
                found.append(f"{doc}:{number} names {path}, which ends no path of the project")
            row_paths.append(path)
        for module in MODULE.findall(line):
            if not _module_exists(root, module):
                found.append(f"{doc}:{number} names the module {module}, which does not exist")
        # Bare names: next to the row's first path in a table, else anywhere.
        here = ""
        if line.startswith("|") and row_paths and row_paths[0].split("/", 1)[0] in TOP:
            here = row_paths[0] if row_paths[0].endswith("/") else row_paths[0].rsplit("/", 1)[0]
        for bare in FILE.findall(PATH.sub(" ", line)):
            if here and (_exists(root, f"{here.rstrip('/')}/{bare}") or _anywhere(root, bare)):
                continue
            if not here and _anywhere(root, bare):
                continue
            found.append(f"{doc}:{number} names {bare}, which does not exist")
    return found


@pytest.mark.parametrize("doc", MAPS)
def test_the_maps_name_only_files_that_exist(doc: str) -> None:
    assert (ROOT / doc).is_file()
    found = problems(ROOT, doc)
    assert not found, "\n".join(found)


def test_a_name_of_a_missing_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "bot" / "storage").mkdir(parents=True)
    for name in ("bot/desk.py", "bot/storage/db.py", "bot/storage/__init__.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "architecture.md").write_text(
        "The desk (`bot/desk.py`, `bot.desk.Desk`) asks `storage/db.py`.\n"
        "Gone: `bot/scheduler.py`, `bot.outbox.Outbox`, `storage/sql.py`, and `gone.py`.\n"
        "| `bot/storage/` | `db.py`, `repo.py` |\n"
    )
    (tmp_path / "README.md").write_text(
        "## Project layout\n\n```\nbot/            the core\n  desk.py       the desk\n"
        "  engine.py     the loop; db.py\n```\n"
    )
    assert problems(tmp_path, "docs/architecture.md") == [
        "docs/architecture.md:2 names bot/scheduler.py, which does not exist",
        "docs/architecture.md:2 names storage/sql.py, which ends no path of the project",
        "docs/architecture.md:2 names the module bot.outbox, which does not exist",
        "docs/architecture.md:2 names gone.py, which does not exist",
        "docs/architecture.md:3 names repo.py, which does not exist",
    ]
    assert problems(tmp_path, "README.md") == [
        "README.md:6 draws bot/engine.py, which does not exist",
        "README.md:6 names db.py in bot/, which does not exist",
    ]
