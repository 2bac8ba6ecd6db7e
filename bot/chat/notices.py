"""What an adapter tells a person itself, outside a turn, in the reader's language."""

from __future__ import annotations

from bot.i18n import N_

__all__ = ["DOWNLOAD_FAILED"]

DOWNLOAD_FAILED = N_("I could not download the file you sent. Please try sending it again.")
