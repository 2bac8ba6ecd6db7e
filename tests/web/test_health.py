"""/healthz tells nobody anything internal; /readyz explains itself only to callers on this
host or with PARLEY_READYZ_TOKEN; /metrics carries build and process metrics."""

from __future__ import annotations

import httpx

from tests.apps import AppFactory

REMOTE = ("203.0.113.7", 40123)
LOCAL = ("127.0.0.1", 40123)
DETAILS = {"database": "ok", "platforms": {}, "scheduler": "stopped"}


def client(app: object, address: tuple[str, int]) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=address)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://parley.test")


async def test_healthz_says_ok_and_nothing_else(make_app: AppFactory) -> None:
    app = await make_app()
    async with client(app.web_app(), REMOTE) as remote:
        health = await remote.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert "scripted" not in health.text  # the model's name is an internal


async def test_readyz_details_are_for_local_callers_and_token_holders(
    make_app: AppFactory,
) -> None:
    app = await make_app(ops={"readyz_token": "monitor-token-123"})
    web = app.web_app()
    async with client(web, LOCAL) as local, client(web, REMOTE) as remote:
        answers = {
            "local": await local.get("/readyz"),
            "proxied": await local.get("/readyz", headers={"X-Forwarded-For": "198.51.100.1"}),
            "remote": await remote.get("/readyz"),
            "wrong token": await remote.get(
                "/readyz", headers={"Authorization": "Bearer monitor-token-12"}
            ),
            "token": await remote.get(
                "/readyz", headers={"Authorization": "Bearer monitor-token-123"}
            ),
        }
    # Not serving: the scheduler is stopped, so every caller hears 503.
    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(
        answers, 503
    )
    bodies = {name: answer.json() for name, answer in answers.items()}
    assert bodies == {
        "local": {"status": "unavailable", **DETAILS},
        "proxied": {"status": "unavailable"},
        "remote": {"status": "unavailable"},
        "wrong token": {"status": "unavailable"},
        "token": {"status": "unavailable", **DETAILS},
    }


async def test_metrics_carry_build_info_and_process_metrics(make_app: AppFactory) -> None:
    from importlib.metadata import version

    app = await make_app()
    async with client(app.web_app(), LOCAL) as local:
        text = (await local.get("/metrics")).text
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    assert 'parley_build_info{python="' in text
    assert f'version="{version("parley")}"' in text
    assert {
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
        "python_info",
    } <= names
