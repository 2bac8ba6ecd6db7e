"""The walls between the packages, read from the imports of every module.

- `bot` is the core: it never imports `integrations` or `tools`, except the composition
  root `bot/app.py` (with `bot/builders.py`, the parts it builds from settings) and the
  CLI `bot/cli.py` that calls it.
- Inside `bot`, rooms by concept, each behind its own walls:
  - the ground (`bot/config/`, `domain`, `errors`, `i18n`, `links`, `numbers`, `surface`,
    `toolkit`) imports nothing of `bot` but the ground;
  - `bot.turn` (the turn loop) never imports `bot.chat`, `bot.web` or `bot.reminders`;
  - `bot.approvals`, `bot.policy` and `bot.ops` never import `bot.turn` or `bot.chat`.
- `integrations` (platform adapters) never import `tools`, and of the core only the front
  door `bot.chat`, the ground, and what renders cards and questions
  (`bot.approvals.cards`, `bot.approvals.questions`); a platform's doctor check is written
  against `bot.ops.doctor`'s `Check`.
- `tools` use only `bot.toolkit`, `bot.domain` and `bot.errors` of the core, and never
  an adapter.

- SQL is written only under `bot/storage`: no other module imports SQLAlchemy or
  SQLModel (parsing a database URL aside) or calls `execute`/`exec` itself; it asks a store.

- No import circles: a module never reaches itself through its imports (`bot/surface.py`
  declares what a Surface and the approvals share, and imports nothing of approvals).

- No module is over 500 lines: one that grows past it is split by concern (a package
  with a face), not left to grow.

Imports under `if TYPE_CHECKING:` count: a type-only dependency is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "integrations", "tools")
COMPOSITION_ROOTS = frozenset({"bot/app.py", "bot/builders.py", "bot/cli.py"})
CORE_FOR_TOOLS = ("bot.toolkit", "bot.domain", "bot.errors")
GROUND = (
    "bot.config",
    "bot.domain",
    "bot.errors",
    "bot.i18n",
    "bot.links",
    "bot.numbers",
    "bot.surface",
    "bot.toolkit",
)
# What an adapter may import of the core: the front door, the ground, and what renders.
CORE_FOR_ADAPTERS = ("bot.chat", *GROUND, "bot.approvals.cards", "bot.approvals.questions")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(root: Path, path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line, dotted name) for everything a module imports, relative ones resolved.

    `from a import b` yields `a.b`, since `b` may be a submodule: `from bot import engine`
    must count as importing `bot.turn.engine`, not merely `bot`.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(root, path).split(".")
    if path.name != "__init__.py":
        package.pop()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}" if module else alias.name


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def room_of(module: str) -> str:
    """`bot.turn.engine` is in `bot.turn`; a ground module is in "ground"."""
    if within(module, GROUND):
        return "ground"
    return ".".join(module.split(".")[:2])


def rule_broken(source: str, imported: str) -> str | None:
    """Why `source` (a path like `tools/weather.py`) may not import `imported`, if so."""
    layer = source.split("/")[0]
    if layer == "bot" and source not in COMPOSITION_ROOTS:
        if within(imported, ("integrations", "tools")):
            return "the core may not import adapters or tools (only bot/app.py and bot/cli.py)"
        if not within(imported, ("bot",)) or imported == "bot":
            return None
        room, target = room_of(module_name_of(source)), room_of(imported)
        if room == "ground" and target != "ground":
            return "the ground imports nothing of bot but the ground"
        if room == "bot.turn" and target in ("bot.chat", "bot.web", "bot.reminders"):
            return "bot.turn may not import bot.chat, bot.web or bot.reminders"
        if room in ("bot.approvals", "bot.policy", "bot.ops") and target in (
            "bot.turn",
            "bot.chat",
        ):
            return f"{room} may not import bot.turn or bot.chat"
    elif layer == "integrations":
        if within(imported, ("tools",)):
            return "adapters may not import tools"
        if within(imported, ("bot.storage",)):
            return "adapters may not import bot.storage (ask the desk)"
        if source.endswith("/doctor.py") and within(imported, ("bot.ops.doctor",)):
            return None
        if within(imported, ("bot",)) and not within(imported, CORE_FOR_ADAPTERS):
            return "adapters may import only bot.chat, the ground and what renders cards"
    elif layer == "tools":
        if within(imported, ("integrations",)):
            return "tools may not import adapters"
        if within(imported, ("bot",)) and not within(imported, CORE_FOR_TOOLS):
            return "tools may use only " + ", ".join(CORE_FOR_TOOLS)
    return None


def module_name_of(source: str) -> str:
    return module_name(Path("."), Path(source))


def source_files(root: Path) -> list[Path]:
    return sorted(
        path
        for package in PACKAGES
        if (root / package).is_dir()
        for path in (root / package).rglob("*.py")
        if "__pycache__" not in path.parts
    )


def violations(root: Path) -> list[str]:
    found = []
    for path in source_files(root):
        source = path.relative_to(root).as_posix()
        for line, imported in imports_of(root, path):
            reason = rule_broken(source, imported)
            if reason:
                found.append(f"{source}:{line} imports {imported}: {reason}")
    return found


def test_the_packages_respect_their_walls() -> None:
    assert len(source_files(ROOT)) > 3, "no modules found: is ROOT right?"
    broken = violations(ROOT)
    assert not broken, "import rules broken:\n" + "\n".join(broken)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Each module and the modules of the project it imports (the longest known prefix of
    each imported name: `from bot.approvals.gate import Answer` is `bot.approvals.gate`)."""
    modules = {module_name(root, path): path for path in source_files(root)}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for _line, imported in imports_of(root, path):
            parts = imported.split(".")
            known = (".".join(parts[:i]) for i in range(len(parts), 0, -1))
            target = next((m for m in known if m in modules), None)
            if target is not None and target != name:
                graph[name].add(target)
    return graph


def import_circles(root: Path) -> list[list[str]]:
    """The groups of modules that import each other, round and round (Tarjan's strongly
    connected components of more than one module)."""
    graph = import_graph(root)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while (top := stack.pop()) != module:
                group.append(top)
            if group:
                circles.append(sorted([module, *group]))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return circles


def test_no_import_circles() -> None:
    circles = import_circles(ROOT)
    assert not circles, "modules that import each other:\n" + "\n".join(map(str, circles))
    assert not import_graph(ROOT)["bot.surface"] & {"bot.approvals.gate"}


def test_bot_keeps_its_ground_small() -> None:
    """Rooms by concept: at most 12 modules directly in bot/ (`__init__` included)."""
    modules = sorted(path.name for path in (ROOT / "bot").glob("*.py"))
    assert "app.py" in modules, "is ROOT right?"
    assert len(modules) <= 12, modules


def test_every_room_of_bot_has_a_face() -> None:
    """Each package says what lives there and names its public objects in `__all__`."""
    faceless = []
    for init in sorted((ROOT / "bot").glob("*/__init__.py")):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        names = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        if ast.get_docstring(tree) is None or "__all__" not in names:
            faceless.append(init.parent.name)
    assert not faceless, f"packages without a docstring and __all__: {faceless}"


def test_an_import_circle_is_found_even_behind_type_checking(tmp_path: Path) -> None:
    (tmp_path / "bot" / "approvals").mkdir(parents=True)
    (tmp_path / "bot" / "surface.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from bot.approvals.gate import A\n"
    )
    (tmp_path / "bot" / "approvals" / "gate.py").write_text("from bot import surface\n")
    (tmp_path / "bot" / "domain.py").write_text("import enum\n")
    assert import_circles(tmp_path) == [["bot.approvals.gate", "bot.surface"]]


def test_tools_package_lists_all_tools() -> None:
    tree = ast.parse((ROOT / "tools" / "__init__.py").read_text(encoding="utf-8"))
    assigned = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    assert "ALL_TOOLS" in assigned, "tools/__init__.py must define ALL_TOOLS explicitly"


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        (
            "bot/turn/engine.py",
            "from integrations.slack import app",
            "bot/turn/engine.py:1 imports ",
        ),
        (
            "bot/turn/engine.py",
            "import tools.weather",
            "bot/turn/engine.py:1 imports tools.weather",
        ),
        ("bot/llm/openai.py", "from ... import tools", "bot/llm/openai.py:1 imports tools"),
        ("integrations/console.py", "from tools import ALL_TOOLS", "imports tools.ALL_TOOLS"),
        ("integrations/slack/commands.py", "from bot.storage import db", "imports bot.storage"),
        ("integrations/telegram/surface.py", "import bot.storage.repository", "(ask the desk)"),
        (
            "tools/weather.py",
            "from bot.turn.engine import handle",
            "imports bot.turn.engine.handle",
        ),
        ("tools/weather.py", "from bot import storage", "imports bot.storage"),
        ("tools/weather.py", "from ..bot import policy", "imports bot.policy"),
        ("bot/domain.py", "from bot.turn import engine", "the ground imports nothing"),
        ("bot/surface.py", "from bot.approvals.cards import x", "the ground imports nothing"),
        ("bot/turn/engine.py", "from bot.chat.desk import Desk", "bot.turn may not import"),
        ("bot/turn/answer.py", "from bot.web import server", "bot.turn may not import"),
        ("bot/turn/engine.py", "import bot.reminders.clock", "bot.turn may not import"),
        ("bot/ops/alerts.py", "from bot.turn.engine import x", "bot.ops may not import"),
        ("bot/policy/tools.py", "from bot.chat import run", "bot.policy may not import"),
        ("bot/approvals/gate.py", "from bot.turn import x", "bot.approvals may not import"),
        ("integrations/console.py", "from bot.turn.engine import x", "may import only bot.chat"),
        ("integrations/slack/commands.py", "from bot.policy.admin import x", "only bot.chat"),
        ("integrations/telegram/platform.py", "from bot.ops.doctor import x", "only bot.chat"),
        ("tools/weather.py", "import bot", "tools/weather.py:1 imports bot"),
        ("tools/mcp/client.py", "from integrations import slack", "imports integrations.slack"),
    ],
)
def test_a_broken_rule_is_reported(tmp_path: Path, path: str, source: str, expected: str) -> None:
    module = tmp_path / path
    module.parent.mkdir(parents=True)
    module.write_text(source + "\n", encoding="utf-8")
    found = violations(tmp_path)
    assert len(found) == 1
    assert expected in found[0]


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("bot/app.py", "import integrations.slack\nimport tools\n"),
        ("bot/cli.py", "from integrations import console\n"),
        ("bot/turn/engine.py", "from bot.toolkit import Tool\nfrom . import context\n"),
        ("bot/turn/engine.py", "from bot.approvals.gate import Gate\nimport bot.policy\n"),
        ("bot/chat/desk.py", "from bot.turn.engine import Engine\n"),
        ("bot/domain.py", "from bot.links import inspect_link\nfrom bot import errors\n"),
        ("integrations/console.py", "from bot.chat.desk import Desk\n"),
        ("integrations/slack/surface.py", "from bot.approvals.questions import InputStep\n"),
        ("integrations/slack/doctor.py", "from bot.ops.doctor import Check\n"),
        (
            "integrations/slack/platform.py",
            "from bot.chat.desk import Desk\nfrom bot import surface\n",
        ),
        ("tools/weather.py", "from bot.toolkit import tool\nfrom bot import domain\n"),
        ("tools/email.py", "from bot.errors import ToolError\nfrom . import weather\n"),
    ],
)
def test_allowed_imports_pass(tmp_path: Path, path: str, source: str) -> None:
    module = tmp_path / path
    module.parent.mkdir(parents=True)
    module.write_text(source, encoding="utf-8")
    assert violations(tmp_path) == []


# Parsing a database URL (to show it, or find the SQLite file) writes no SQL.
URL_PARSING = frozenset({"sqlalchemy.make_url", "sqlalchemy.engine.make_url", "sqlalchemy.URL"})
EXECUTING = frozenset({"execute", "exec", "exec_driver_sql", "executemany", "executescript"})


def sql_violations(root: Path) -> list[str]:
    """Where a module outside bot/storage builds or runs SQL itself."""
    found = []
    for path in source_files(root):
        source = path.relative_to(root).as_posix()
        if source.startswith("bot/storage/"):
            continue
        for line, imported in imports_of(root, path):
            if within(imported, ("sqlalchemy", "sqlmodel")) and imported not in URL_PARSING:
                found.append(f"{source}:{line} imports {imported}: SQL belongs in bot/storage")
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in EXECUTING
            ):
                found.append(
                    f"{source}:{node.lineno} calls .{node.func.attr}(): ask a store in bot/storage"
                )
    return found


def test_sql_is_written_only_under_bot_storage() -> None:
    assert (ROOT / "bot" / "storage" / "repository.py").is_file(), "is ROOT right?"
    broken = sql_violations(ROOT)
    assert not broken, "SQL outside bot/storage:\n" + "\n".join(broken)


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("bot/ops/leader.py", "from sqlalchemy import delete", "imports sqlalchemy.delete"),
        ("bot/ops/mail.py", "from sqlmodel import select", "imports sqlmodel.select"),
        ("bot/app.py", "import sqlalchemy.dialects.sqlite", "imports sqlalchemy.dialects"),
        ("integrations/slack/app.py", "from sqlalchemy import text", "imports sqlalchemy.text"),
        ("tools/weather.py", "from sqlalchemy.ext.asyncio import x", "imports sqlalchemy.ext"),
        ("bot/app.py", "async def f(s):\n    await s.exec(q)", "calls .exec()"),
        ("bot/ops/leader.py", "def f(c):\n    c.execute(q)", "calls .execute()"),
        ("bot/ops/doctor.py", "def f(c):\n    c.exec_driver_sql('x')", "calls .exec_driver_sql()"),
    ],
)
def test_sql_outside_storage_is_reported(
    tmp_path: Path, path: str, source: str, expected: str
) -> None:
    module = tmp_path / path
    module.parent.mkdir(parents=True)
    module.write_text(source + "\n", encoding="utf-8")
    found = sql_violations(tmp_path)
    assert len(found) == 1
    assert expected in found[0]


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("bot/storage/leases.py", "from sqlalchemy import delete\ndef f(c):\n    c.execute(q)"),
        ("bot/storage/migrations/env.py", "from sqlalchemy import pool"),
        ("bot/cli.py", "from sqlalchemy import make_url"),
        ("bot/ops/doctor.py", "from sqlalchemy import make_url\nfrom bot.storage import migrate"),
        ("bot/ops/leader.py", "async def f(s):\n    await s.take('scheduler')"),
    ],
)
def test_sql_inside_storage_and_url_parsing_pass(tmp_path: Path, path: str, source: str) -> None:
    module = tmp_path / path
    module.parent.mkdir(parents=True)
    module.write_text(source + "\n", encoding="utf-8")
    assert sql_violations(tmp_path) == []


MAX_LINES = 500
# An adapter's platform.py only routes: what it does lives in the modules beside it.
MAX_PLATFORM_LINES = 300


def long_modules(root: Path) -> list[str]:
    """The modules over their limit, with their length."""
    found = []
    for path in source_files(root):
        source = path.relative_to(root).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        platform = source.startswith("integrations/") and path.name == "platform.py"
        limit = MAX_PLATFORM_LINES if platform else MAX_LINES
        if lines > limit:
            found.append(f"{source}: {lines} lines")
    return found


def test_no_module_is_over_500_lines_and_no_platform_over_300() -> None:
    assert (ROOT / "bot" / "turn" / "engine.py").is_file(), "is ROOT right?"
    long = long_modules(ROOT)
    assert not long, "split these by concern:\n" + "\n".join(long)


def test_a_module_over_500_lines_is_reported(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "long.py").write_text("x = 1\n" * 501, encoding="utf-8")
    (tmp_path / "tools" / "short.py").write_text("x = 1\n" * 500, encoding="utf-8")
    (tmp_path / "integrations" / "slack").mkdir(parents=True)
    (tmp_path / "integrations" / "slack" / "platform.py").write_text("x = 1\n" * 301)
    assert long_modules(tmp_path) == [
        "integrations/slack/platform.py: 301 lines",
        "tools/long.py: 501 lines",
    ]
