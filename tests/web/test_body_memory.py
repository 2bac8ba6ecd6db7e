"""A 200 MB body costs a real `parley run` at most a few MiB: the peak resident memory
(VmHWM) before and after, unsigned and declared, then streamed with fresh signature
headers so the body must be read (up to its limit) before the signature can fail."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import ParleyProcess, upload

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

BODY = 200 * 1024 * 1024
ALLOWED_KIB = 4 * 1024  # "a few MiB": the limits are 1 MiB, uvicorn buffers 64 KiB


async def test_a_200_mb_body_does_not_raise_peak_memory(tmp_path: Path) -> None:
    with ParleyProcess(tmp_path) as parley:
        async with httpx.AsyncClient(base_url=parley.url, timeout=120) as client:
            # Warm up every path once, so first-use allocations are in the baseline.
            for path in ("/slack/events", "/admin/login"):
                await client.post(path, content=b"{}", headers={"Content-Type": "text/plain"})
            before = parley.status("VmHWM")
            declared = await client.post(
                "/slack/events",
                content=upload(BODY),
                headers={"Content-Length": str(BODY), "Content-Type": "application/json"},
            )
            after_declared = parley.status("VmHWM")
            fresh = {
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": str(int(time.time())),
                "X-Slack-Signature": "v0=" + "0" * 64,
            }
            streamed = await client.post("/slack/events", content=upload(BODY), headers=fresh)
            console = await client.post(
                "/admin/login",
                content=upload(BODY),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            after = parley.status("VmHWM")

    assert (declared.status_code, streamed.status_code, console.status_code) == (413, 413, 413)
    assert after_declared - before <= ALLOWED_KIB, (before, after_declared)
    assert after - before <= ALLOWED_KIB, (before, after)
