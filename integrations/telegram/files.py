"""Downloading a file the Bot API described, from the configured Bot API file URL only.

getFile answers a `file_path`, and python-telegram-bot would read an absolute path that
exists on this machine from the disk (its local mode) and download anything else whole
before Parley could look at its size. Here the path must be a plain relative path under
`<file URL>/bot<token>/`; the body is streamed without redirects and cut one byte past
the limit, whatever getFile said the size was. The URL carries the token, so it is never
logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import quote

import httpx
from telegram import Bot
from telegram.error import TelegramError

from bot.chat.desk import Desk
from bot.chat.notices import DOWNLOAD_FAILED
from bot.domain import Attachment
from bot.i18n import _
from integrations.telegram.convert import FileRef

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def relative_file_path(file_path: str, file_root: str) -> str | None:
    """The path of a file under `file_root` (`…/file/bot<token>/`) as getFile gave it to
    python-telegram-bot, or None when it is not one: a local path, another host, or a
    path that climbs out (`..`) or carries a query."""
    if not file_path.startswith(file_root):
        return None
    relative = file_path.removeprefix(file_root)
    parts = relative.split("/")
    if not relative or any(p in ("", ".", "..") for p in parts):
        return None
    if any(c in relative for c in "?#\\") or any(ord(c) < 0x20 for c in relative):
        return None
    return relative


async def download_file(file_path: str, *, file_root: str, limit: int) -> bytes | None:
    """The file's bytes (at most one past `limit`), or None when it is not the Bot API's
    to give or the download failed; each failure is one log line without the URL."""
    relative = relative_file_path(file_path, file_root)
    if relative is None:
        log.warning("telegram: getFile named a file outside the Bot API file URL; refused")
        return None
    url = file_root + quote(relative)
    data = bytearray()
    try:
        async with (
            httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                log.warning("telegram: a file download got HTTP %d", response.status_code)
                return None
            async for chunk in response.aiter_bytes(CHUNK):
                data += chunk
                if len(data) > limit:
                    break  # the core refuses it with the size; the rest is not read
    except httpx.HTTPError as exc:
        log.warning("telegram: a file download failed: %s", type(exc).__name__)
        return None
    return bytes(data[: limit + 1])


async def download_all(
    bot: Bot, files: Sequence[FileRef], desk: Desk, *, file_root: str
) -> tuple[tuple[Attachment, ...], str | None]:
    """The files' bytes (getFile, then the configured file URL, which carries the bot
    token and so is never logged), or what to tell the user instead."""
    downloaded: list[Attachment] = []
    for ref in files:
        attachment = ref.attachment
        try:
            file = await bot.get_file(ref.file_id)
            # getFile tells the size for certain; the message may not have.
            declared = replace(attachment, size=file.file_size or attachment.size)
            refusal = desk.file_refusal([declared])
            if refusal is not None:
                return (), refusal
        except TelegramError as exc:
            log.warning(
                "telegram: a %s file could not be downloaded (%s: %s)",
                attachment.kind.value,
                type(exc).__name__,
                exc.message,
            )
            return (), _(DOWNLOAD_FAILED)
        data = await download_file(
            file.file_path or "", file_root=file_root, limit=desk.download_limit(attachment.kind)
        )
        if data is None:
            return (), _(DOWNLOAD_FAILED)
        downloaded.append(replace(declared, data=data))
    return tuple(downloaded), None


def file_base_url(base_url: str) -> str:
    """Where the Bot API serves files, next to its methods: `https://api.telegram.org/bot`
    gives `https://api.telegram.org/file/bot` (a local Bot API server alike)."""
    root = base_url.rstrip("/").removesuffix("/bot")
    return f"{root}/file/bot"
