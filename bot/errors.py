"""The one error tree of Parley.

    ParleyError
    ├── ConfigError                 settings missing or invalid
    ├── StorageError                the database refused or is unreachable
    ├── PlatformUnavailable         a chat platform's API cannot be reached at start
    ├── ProviderError               the LLM call failed
    │   ├── ProviderRateLimited     429 after retries
    │   ├── ProviderUnavailable     connection errors, timeouts, 5xx after retries
    │   │   ├── AnswerCutOff        the stream ended without its terminator
    │   │   └── StreamFailed        the vendor said, inside a 200 stream, it failed for now
    │   ├── ContextTooLong          the prompt exceeds the model's window
    │   ├── ProviderAuthError       401/403: wrong key or no access to the model
    │   └── ProviderBadRequest      any other 4xx: the request itself is wrong
    ├── TranscriptionFailed         a voice note could not be transcribed
    └── ToolError                   a tool failed; becomes a tool result, never a crash

Each ProviderError carries `user_message`, a sentence safe to show in a chat; the
technical detail stays in the exception text, for the logs.
"""

from __future__ import annotations

from bot.i18n import N_


class ParleyError(Exception):
    """Base of every error Parley raises on purpose."""


class ConfigError(ParleyError):
    """Settings are missing or invalid; the message names the variable."""


class StorageError(ParleyError):
    """The database could not do what was asked."""


class PlatformUnavailable(ParleyError):
    """A chat platform's API could not be reached (or failed) while Parley started; the
    message names the setting with its address, never a credential."""


class ProviderError(ParleyError):
    """The LLM provider failed. `user_message` is safe to show to the user (translate it
    where shown: `_(exc.user_message)`)."""

    user_message = N_("The language model failed to answer. Please try again in a moment.")

    def __init__(self, detail: str, *, status_code: int | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code


class ProviderRateLimited(ProviderError):
    user_message = N_("The language model is busy (rate limited). Please try again in a minute.")


class ProviderUnavailable(ProviderError):
    user_message = N_("The language model is unreachable right now. Please try again later.")


class AnswerCutOff(ProviderUnavailable):
    """The stream ended cleanly but without a finish reason, `[DONE]` or `message_stop`:
    what arrived is part of an answer, never a finished one."""

    user_message = N_("The model's answer was cut off. Please ask again.")


class StreamFailed(ProviderUnavailable):
    """The vendor reported a failure it calls transient inside a 200 stream (an error
    object of a server error or overload): asking again may succeed."""


class ContextTooLong(ProviderError):
    user_message = N_(
        "This conversation is too long for the model. Send /reset to start a new one."
    )


class ProviderAuthError(ProviderError):
    user_message = N_(
        "The bot cannot sign in to its language model. An operator needs to check its API key."
    )


class ProviderBadRequest(ProviderError):
    user_message = N_(
        "The language model rejected the request. An operator can find details in the logs."
    )


class ToolError(ParleyError):
    """A tool could not do its work; the text is shown to the model as the tool result."""


class TranscriptionFailed(ParleyError):
    """The transcription endpoint refused a voice note or could not be reached; the
    message says why (for the logs), never the audio or the key."""
