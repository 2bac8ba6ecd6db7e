"""Downloading a shared file from Slack, and only from Slack.

A file object names its own URL (`url_private_download`), and an event is only data: an
external or remote file, or a forged payload, can name any host. The bot token goes only
to Slack's file hosts over HTTPS (`files.slack.com`, GovSlack's `files.slack-gov.com`,
`slack-files.com` and its subdomains) or to the origin of the configured Web API URL
(`PARLEY_SLACK_API_URL`, so a test server or a proxy in front of Slack works); every
other URL is refused before any request is made, and so is a redirect that leaves those
hosts. The body is streamed and cut one byte past the limit, so the core can say how
large it was without Parley holding more.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import urljoin, urlsplit

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat.desk import Desk
from bot.chat.notices import DOWNLOAD_FAILED
from bot.domain import Attachment
from bot.i18n import N_, _
from integrations.slack.convert import SlackFile, to_slack_file
from integrations.slack.webapi import slack_call

log = logging.getLogger(__name__)

# Slack's file hosts (its connection requirements list files.slack.com and slack-files.com;
# GovSlack runs on slack-gov.com). `files-pri`/`files-tmb` are paths on them, not hosts.
SLACK_FILE_HOSTS = frozenset({"files.slack.com", "files.slack-gov.com", "slack-files.com"})
SLACK_FILE_DOMAINS = (".slack-files.com",)
MAX_REDIRECTS = 3
NOT_ON_SLACK = N_(
    "I can't open that file: it is not stored on Slack, and I download files only from "
    "Slack itself. Please upload it to Slack and send it again."
)
CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a download gave: the bytes (at most one past the limit), or why not.

    `refused` means the URL itself was not Slack's (the user hears so); otherwise
    `data is None` means Slack did not give the file."""

    data: bytes | None
    refused: bool = False


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.lower(), port or default


class SlackFileHosts:
    """Which URLs may carry the bot token: Slack's file hosts over HTTPS, and the origin
    of the configured Web API URL."""

    def __init__(self, api_url: str) -> None:
        self._api_origin = _origin(api_url)

    def allows(self, url: str) -> bool:
        origin = _origin(url)
        if origin is None or "@" in urlsplit(url).netloc:
            return False
        if origin == self._api_origin:
            return True
        scheme, host, port = origin
        if scheme != "https" or port != 443:
            return False
        return host in SLACK_FILE_HOSTS or host.endswith(SLACK_FILE_DOMAINS)


async def fetch_file(
    session: aiohttp.ClientSession, url: str, *, token: str, hosts: SlackFileHosts, limit: int
) -> Fetched:
    """A file's bytes from a Slack file URL with the bot token, following at most
    `MAX_REDIRECTS` redirects that stay on Slack's hosts. The URL is never logged whole
    (it names the file); only the host of a refused one is."""
    for _hop in range(MAX_REDIRECTS + 1):
        if not hosts.allows(url):
            log.warning(
                "slack: refused to download a file from %r: not one of Slack's file hosts",
                urlsplit(url).hostname or "no host",
            )
            return Fetched(None, refused=True)
        async with session.get(
            url, headers={"Authorization": f"Bearer {token}"}, allow_redirects=False
        ) as response:
            if response.status in (301, 302, 303, 307, 308):
                url = urljoin(url, response.headers.get("Location", ""))
                continue
            kind = response.headers.get("content-type", "")
            if response.status != 200 or kind.startswith("text/html"):
                # Slack answers a request without a good token with its sign-in page.
                log.warning(
                    "slack: a file download got HTTP %d (%s): does the app have the "
                    "files:read scope?",
                    response.status,
                    kind.partition(";")[0] or "no type",
                )
                return Fetched(None)
            data = bytearray()
            async for chunk in response.content.iter_chunked(CHUNK):
                data += chunk
                if len(data) > limit:
                    break  # the core refuses it with the size; the rest is not read
            return Fetched(bytes(data[: limit + 1]))
    log.warning("slack: a file download was redirected more than %d times", MAX_REDIRECTS)
    return Fetched(None)


async def download_all(
    client: AsyncWebClient,
    files: Sequence[SlackFile],
    desk: Desk,
    *,
    token: str,
    hosts: SlackFileHosts,
) -> tuple[tuple[Attachment, ...], str | None]:
    """The files' bytes, fetched from their private URLs on Slack's file hosts with the
    bot token (the files:read scope), or what to tell the user instead. Limits are
    checked on what Slack declares first, and on the bytes as they arrive."""
    described: list[SlackFile] = []
    for shared in files:
        item: SlackFile | None = shared
        if shared.check_info or not shared.url:
            response = await slack_call("files.info", client.files_info(file=shared.file_id))
            info = response.get("file") if response is not None else None
            item = to_slack_file(info) if isinstance(info, dict) else None
        if item is None or item.check_info or not item.url:
            log.info("slack: a shared file could not be described by files.info")
            return (), _(DOWNLOAD_FAILED)
        described.append(item)
    refusal = desk.file_refusal([item.attachment for item in described])
    if refusal is not None:
        return (), refusal
    downloaded: list[Attachment] = []
    for item in described:
        fetched = await _fetch(
            client, item, token, hosts, desk.download_limit(item.attachment.kind)
        )
        if fetched.refused:
            return (), _(NOT_ON_SLACK)
        if fetched.data is None:
            return (), _(DOWNLOAD_FAILED)
        downloaded.append(replace(item.attachment, data=fetched.data))
    return tuple(downloaded), None


async def _fetch(
    client: AsyncWebClient, item: SlackFile, token: str, hosts: SlackFileHosts, limit: int
) -> Fetched:
    """One file's bytes, at most one byte over the download limit (the core refuses
    what is over it), from Slack's own file hosts only."""
    session = client.session
    if session is None:
        return Fetched(None)
    try:
        return await fetch_file(session, item.url, token=token, hosts=hosts, limit=limit)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("slack: a file download failed: %s", type(exc).__name__)
        return Fetched(None)
