"""`RecordingSurface`: a Surface that remembers everything the engine did to it."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.domain import InputAction, InputAnswer, InputQuestion, ToolCall, ToolResult, UserRef
from bot.surface import Answer, ApprovalPrompt


@dataclass
class RecordingSurface:
    """Records every call; `confirm_answer` is what the user "presses" (True: Approve
    once, False: Deny, or an `Answer`); `confirmations` holds each question's card text."""

    confirm_answer: bool | Answer = True
    deltas: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    started_tools: list[ToolCall] = field(default_factory=list)
    progress: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    finished_tools: list[tuple[ToolCall, ToolResult]] = field(default_factory=list)
    confirmations: list[tuple[UserRef, str]] = field(default_factory=list)
    questions: list[ApprovalPrompt] = field(default_factory=list)
    # A tool's questions (`ask`): each answered with the next of `input_answers`
    # (cancelled when none is left), and recorded with who was asked.
    input_answers: list[InputAnswer] = field(default_factory=list)
    asked: list[tuple[UserRef, InputQuestion]] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    starts: int = 0
    progressed: list[tuple[ToolCall, str]] = field(default_factory=list)  # progress lines

    @property
    def streamed(self) -> str:
        return "".join(self.deltas)

    async def start(self) -> None:
        self.starts += 1

    async def stream(self, delta: str) -> None:
        self.deltas.append(delta)

    async def status(self, text: str) -> None:
        self.statuses.append(text)

    async def thinking(self, delta: str) -> None:
        self.reasoning.append(delta)

    async def tool_started(self, call: ToolCall, progress: str) -> None:
        self.started_tools.append(call)
        self.progress.append(progress)

    async def tool_progress(self, call: ToolCall, progress: str) -> None:
        self.progressed.append((call, progress))

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        self.finished_tools.append((call, result))

    async def finish(self, text: str) -> None:
        self.finished.append(text)

    async def fail(self, text: str) -> None:
        self.failures.append(text)

    async def confirm(self, user: UserRef, question: ApprovalPrompt) -> Answer:
        self.confirmations.append((user, question.render(4096).text))
        self.questions.append(question)
        answer = self.confirm_answer
        if isinstance(answer, bool):
            answer = Answer.ONCE if answer else Answer.DENIED
        return await question.respond(answer)

    async def ask(self, user: UserRef, question: InputQuestion) -> InputAnswer:
        self.asked.append((user, question))
        if self.input_answers:
            return self.input_answers.pop(0)
        return InputAnswer(InputAction.CANCEL)
