"""No words Parley writes to people outside the catalogs (bot/i18n.py).

Reads the modules that write to chats and to the console and fails on an English
sentence that is not wrapped in `_()`, `N_()` or `ngettext()`. What people never read is
left alone: docstrings, log calls, exceptions (for logs and operators), text for the
model, and the allowed strings below (each says why).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Modules whose strings reach people: the adapters, and the core's writers. Not the
# operators' tools (`parley doctor`, start-up failures): they read English, like the logs.
OPERATORS = frozenset({"doctor.py", "startup.py"})
WRITERS = (
    "approvals/*.py",
    "chat/*.py",
    "errors.py",
    "policy/admin.py",
    "policy/limits.py",
    "reminders/*.py",
    "surface.py",
    "turn/engine.py",
    "turn/media.py",
    "turn/rounds.py",
    "web/console/*.py",
    "web/forms.py",
    "web/languages.py",
    "web/overview.py",
)
SURFACES = sorted(
    {
        *(p for p in ROOT.glob("integrations/**/*.py") if p.name not in OPERATORS),
        *(path for pattern in WRITERS for path in (ROOT / "bot").glob(pattern)),
    }
)
# Two words of letters: a sentence or a label, not an identifier, a key or a format.
WORDS = re.compile(r"[A-Za-z]{2,}\S*\s+[A-Za-z]{2,}")
TRANSLATORS = frozenset({"_", "N_", "ngettext"})
LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical", "log"})
# Calls whose string arguments label a platform call in the logs, never shown.
LOG_LABELS = frozenset({"slack_call", "call", "_guard", "getLogger", "filterwarnings"})
# Keyword arguments that are not for people: descriptions for the model, CLI help.
NOT_FOR_PEOPLE = frozenset({"description", "help"})

ALLOWED: dict[str, set[str]] = {
    # Error texts the Telegram Bot API answers with, matched to classify failures.
    "integrations/telegram/delivery.py": {
        ".*`retry_after` will be of type",
        "chat not found",
        "bot was blocked",
        "bot was kicked",
        "user is deactivated",
        "have no rights to send",
        "not enough rights",
        "group chat was upgraded",
        "bot is not a member",
        "can't parse entities",
        "message is not modified",
    },
    "integrations/telegram/surface.py": {"not found"},
    # python-telegram-bot's warning text, silenced by message.
    "integrations/telegram/approvals.py": {
        "Please use 'Bot.sendMessage'",
        "the question was posted to the chat instead",
    },
    "integrations/telegram/webhook.py": {" in Update.de_json"},
    # Shown to the model only: the name of an anonymous admin and of a forwarded message's
    # origin (author fields), and what a requester who only forwarded a message said.
    "integrations/telegram/convert.py": {
        " (anonymous admin)",
        " (forwarded by ",
        "[forwarded message]",
    },
    # Commands typed at the terminal, matched.
    "integrations/console.py": {"/tools revoke "},
    # Parts of the Slack request checks' log lines and 4xx bodies for Slack itself.
    "integrations/slack/inbound.py": {"the body", "the payload field"},
    # Audit details and reasons (stored, not shown as sentences).
    "bot/policy/admin.py": {"not an admin"},
    "bot/approvals/gate.py": {"not the asker"},
    "bot/web/console/access.py": {"wrong password"},
    "bot/web/console/records.py": {"not pending"},
    # The history's mark on a stopped answer: the model reads it, the user never does.
    "bot/turn/rounds.py": {"(The user stopped this answer before it was finished.)"},
    # A delivery failure's reason, stored in the reminder's row for operators.
    "bot/reminders/delivery.py": {"empty answer"},
    "bot/web/forms.py": {"content type "},
    # A cookie's attributes.
    "bot/web/languages.py": {"; Path=/admin; Max-Age="},
}


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def untranslated(source: str) -> list[tuple[int, str]]:
    """(line, text) of each sentence in `source` that no translator wraps."""
    tree = ast.parse(source)
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if not WORDS.search(node.value) or isinstance(parents.get(node), ast.Expr):
            continue  # no words, or a docstring
        if not _exempt(node, parents):
            found.append((node.lineno, node.value))
    return found


def _exempt(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    current = node
    while current in parents:
        parent = parents[current]
        if isinstance(parent, ast.Raise):
            return True
        if isinstance(parent, ast.keyword) and parent.arg in NOT_FOR_PEOPLE:
            return True
        if isinstance(parent, ast.Call):
            name = _call_name(parent)
            if name in TRANSLATORS or name in LOG_METHODS:
                return True
            if name in LOG_LABELS and current in parent.args:
                return True
        current = parent
    return False


@pytest.mark.parametrize("path", SURFACES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_sentence_for_people_goes_through_the_catalogs(path: Path) -> None:
    allowed = ALLOWED.get(str(path.relative_to(ROOT)), set())
    found = [(line, text) for line, text in untranslated(path.read_text()) if text not in allowed]
    assert found == [], "wrap these in _() or N_() (bot/i18n.py), or allow them here with why"


def test_every_writer_named_exists() -> None:
    """A module renamed or split is read under its new name, not silently dropped."""
    missing = [pattern for pattern in WRITERS if not any((ROOT / "bot").glob(pattern))]
    assert not missing, missing


def test_the_check_finds_a_sentence_outside_the_catalogs() -> None:
    source = (
        "async def tell(surface):\n"
        '    await surface.fail("Sorry, that went wrong.")\n'
        '    await surface.fail(f"Only {n} tools here.")\n'
        '    await surface.fail(_("Sorry, that went wrong."))\n'
        '    log.warning("a log line for operators")\n'
        '    raise ValueError("for the logs")\n'
    )
    assert [line for line, _text in untranslated(source)] == [2, 3]
