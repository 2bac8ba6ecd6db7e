"""Approval questions in Block Kit: the card, and Approve once / Always allow / Deny (and
"Show all" when the card was shortened); the questions themselves are bot/approvals/gate.py's.

Block Kit limits (docs.slack.dev/reference/block-kit): a section's text at most 3,000
characters, a button's text 75, its value 2,000, at most 50 blocks a message. The card is
rendered to fit a section once escaped for mrkdwn (`&`, `<`, `>` become entities).
"""

from __future__ import annotations

from typing import Any

from bot.approvals.questions import InputStep, PendingInput
from bot.i18n import _
from bot.surface import Answer, ApprovalPrompt

APPROVAL_ACTION = "parley_approval"  # action ids: parley_approval_once, ..._show
INPUT_ACTION = "parley_input"  # a tool's question: action ids parley_input_<key>
SHOW_ALL = "show"
PICK = f"{INPUT_ACTION}_pick"  # a multi-choice's checkboxes: block and action id
CHECKBOX_LIMIT = 10  # Slack's most options in a checkboxes element
SECTION_LIMIT = 3000
BUTTON_LIMIT = 75
# "Show all" sends at most this many messages (a section each); more is cut and said so.
SHOW_ALL_PARTS = 10


def escape(text: str) -> str:
    """Text as Slack mrkdwn shows it literally (Slack's own three escapes)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escaped_len(text: str) -> int:
    return len(escape(text))


def approval_blocks(question: ApprovalPrompt, user_id: str) -> list[dict[str, Any]]:
    """The card for `user_id` and its buttons; every button carries the question's token."""
    mention = f"<@{user_id}>: "
    card = question.render(SECTION_LIMIT - len(mention), escaped_len)
    buttons = [(_("Approve once"), Answer.ONCE.value, "primary")]
    if question.may_remember:
        buttons.append((_("Always allow"), Answer.ALWAYS.value, ""))
    buttons.append((_("Deny"), Answer.DENIED.value, "danger"))
    if card.cut:
        buttons.append((_("Show all"), SHOW_ALL, ""))
    elements = []
    for label, answer, style in buttons:
        element: dict[str, Any] = {
            "type": "button",
            "action_id": f"{APPROVAL_ACTION}_{answer}",
            "text": {"type": "plain_text", "text": label[:BUTTON_LIMIT]},
            "value": question.token,
        }
        if style:
            element["style"] = style
        elements.append(element)
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": mention + escape(card.text)}},
        {"type": "actions", "block_id": "parley_approval", "elements": elements},
    ]


def note_blocks(text: str) -> list[dict[str, Any]]:
    """What an answered or expired question is replaced with."""
    return [{"type": "context", "elements": [{"type": "mrkdwn", "text": text[:SECTION_LIMIT]}]}]


def input_blocks(pending: PendingInput, step: InputStep, user_id: str) -> list[dict[str, Any]]:
    """A step of a tool's question (bot/approvals/questions.py) for `user_id`: its text, a
    multi-choice's options as checkboxes (a multi-select menu past CHECKBOX_LIMIT; what is
    ticked is read from the message's state when Done is pressed), the link as a URL button
    in URL mode, and its buttons (each carrying the question's token)."""
    mention = f"<@{user_id}>: "
    text = mention + escape(step.text)[: SECTION_LIMIT - len(mention)]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if step.options:
        blocks.append({"type": "actions", "block_id": PICK, "elements": [_picker(step)]})
    elements: list[dict[str, Any]] = []
    if step.url:
        label = _("Open {domain}", domain=step.domain)
        elements.append(
            {
                "type": "button",
                "action_id": f"{INPUT_ACTION}_link",
                "text": {"type": "plain_text", "text": label[:BUTTON_LIMIT]},
                "url": step.url[:3000],
            }
        )
    for label, key in step.buttons:
        elements.append(
            {
                "type": "button",
                "action_id": f"{INPUT_ACTION}_{key}",
                "text": {"type": "plain_text", "text": label[:BUTTON_LIMIT]},
                "value": pending.token,
            }
        )
    blocks.append({"type": "actions", "block_id": "parley_input", "elements": elements[:25]})
    return blocks


def _picker(step: InputStep) -> dict[str, Any]:
    options = [
        {"text": {"type": "plain_text", "text": label[:BUTTON_LIMIT]}, "value": key}
        for label, key, _on in step.options
    ]
    chosen = [option for option, (_l, _k, on) in zip(options, step.options, strict=True) if on]
    element: dict[str, Any] = {"action_id": PICK, "options": options}
    if len(options) <= CHECKBOX_LIMIT:
        element["type"] = "checkboxes"
    else:
        element["type"] = "multi_static_select"
        element["placeholder"] = {"type": "plain_text", "text": _("Choose")}
    if chosen:
        element["initial_options"] = chosen
    return element


def picked(body: dict[str, Any]) -> list[str] | None:
    """The option keys ticked in a question's checkboxes or menu when a button was
    pressed (None: the press carried no such state)."""
    state = (body.get("state") or {}).get("values") or {}
    element = (state.get(PICK) or {}).get(PICK)
    if not isinstance(element, dict):
        return None
    chosen = element.get("selected_options") or []
    return [str(option.get("value", ""))[:8] for option in chosen[:100] if isinstance(option, dict)]


def mention(user_id: str) -> str:
    """A person as Slack shows them in a message: `<@U123>`."""
    return f"<@{user_id}>"
