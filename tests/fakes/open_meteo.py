"""An Open-Meteo stand-in: geocoding (`/v1/search`) and forecast (`/v1/forecast`).

A real HTTP server on 127.0.0.1 (ephemeral port, uvicorn in a thread) answering with
Open-Meteo-shaped JSON from a small gazetteer. `fail_status` makes every request answer
with that status; `delay` makes every answer late. `requests` records (path, query).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.http import FakeServer, ThreadedServer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

PLACES: list[dict[str, Any]] = [
    {
        "id": 1816670,
        "name": "Beijing",
        "aliases": ["北京", "北京市", "Peking"],
        "latitude": 39.9075,
        "longitude": 116.39723,
        "country": "China",
        "country_code": "CN",
        "admin1": "Beijing",
        "timezone": "Asia/Shanghai",
        "population": 18960744,
    },
    {
        "id": 5391959,
        "name": "San Francisco",
        "aliases": [],
        "latitude": 37.77493,
        "longitude": -122.41942,
        "country": "United States",
        "country_code": "US",
        "admin1": "California",
        "timezone": "America/Los_Angeles",
        "population": 864816,
    },
    {
        "id": 2147714,
        "name": "Sydney",
        "aliases": [],
        "latitude": -33.86785,
        "longitude": 151.20732,
        "country": "Australia",
        "country_code": "AU",
        "admin1": "New South Wales",
        "timezone": "Australia/Sydney",
        "population": 4627345,
    },
    {
        "id": 6354908,
        "name": "Sydney",
        "aliases": [],
        "latitude": 46.1351,
        "longitude": -60.1831,
        "country": "Canada",
        "country_code": "CA",
        "admin1": "Nova Scotia",
        "timezone": "America/Glace_Bay",
        "population": 29904,
    },
]


class OpenMeteoServer(FakeServer):
    """Use as a context manager; `geocoding_url` and `forecast_url` point at it."""

    def __init__(self) -> None:
        self.geocoding_url = ""
        self.forecast_url = ""
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.fail_status: int | None = None
        self.delay = 0.0
        super().__init__(ThreadedServer(self._app, name="fake-open-meteo"))

    def reset(self) -> None:
        self.requests.clear()
        self.fail_status = None
        self.delay = 0.0

    def started(self, root: str) -> None:
        self.geocoding_url = f"{root}/v1/search"
        self.forecast_url = f"{root}/v1/forecast"

    async def _app(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode()))
        path = scope["path"]
        self.requests.append((path, query))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_status is not None:
            status, body = self.fail_status, {"error": True, "reason": "Internal Server Error"}
        elif path == "/v1/search":
            status, body = 200, search(query)
        elif path == "/v1/forecast":
            status, body = forecast(query)
        else:
            status, body = 404, {"error": True, "reason": "Not Found"}
        data = json.dumps(body, ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})


def search(query: dict[str, str]) -> dict[str, Any]:
    name = query.get("name", "").strip().casefold()
    code = query.get("countryCode", "").upper()
    found = [
        {key: value for key, value in place.items() if key != "aliases"}
        for place in PLACES
        if (name == place["name"].casefold() or name in (a.casefold() for a in place["aliases"]))
        and (not code or place["country_code"] == code)
    ]
    found.sort(key=lambda place: -place["population"])
    # Open-Meteo leaves `results` out when nothing matches.
    return {"results": found, "generationtime_ms": 0.5} if found else {"generationtime_ms": 0.3}


def forecast(query: dict[str, str]) -> tuple[int, dict[str, Any]]:
    try:
        latitude, longitude = float(query["latitude"]), float(query["longitude"])
    except (KeyError, ValueError):
        return 400, {"error": True, "reason": "Parameter 'latitude' is missing"}
    days = int(query.get("forecast_days", "7"))
    fahrenheit = query.get("temperature_unit") == "fahrenheit"
    temp_unit = "°F" if fahrenheit else "°C"

    def temp(celsius: float) -> float:
        return round(celsius * 9 / 5 + 32, 1) if fahrenheit else celsius

    body: dict[str, Any] = {
        "latitude": latitude,
        "longitude": longitude,
        "timezone": "Asia/Shanghai" if longitude > 100 else "GMT",
        "current_units": {
            "time": "iso8601",
            "temperature_2m": temp_unit,
            "apparent_temperature": temp_unit,
            "relative_humidity_2m": "%",
            "precipitation": "inch" if fahrenheit else "mm",
            "weather_code": "wmo code",
            "wind_speed_10m": "mp/h" if query.get("wind_speed_unit") == "mph" else "km/h",
        },
        "current": {
            "time": "2026-11-23T18:00",
            "temperature_2m": temp(12.5),
            "apparent_temperature": temp(10.0),
            "relative_humidity_2m": 71,
            "precipitation": 0.4,
            "weather_code": 61,
            "wind_speed_10m": 9.7,
        },
        "daily_units": {
            "temperature_2m_max": temp_unit,
            "temperature_2m_min": temp_unit,
            "precipitation_sum": "mm",
            "precipitation_probability_max": "%",
        },
        "daily": {
            "time": [f"2026-11-{23 + i}" for i in range(days)],
            "weather_code": [(0, 3, 61, 95, 71, 45, 2)[i % 7] for i in range(days)],
            "temperature_2m_max": [temp(14.0 + i) for i in range(days)],
            "temperature_2m_min": [temp(4.0 + i) for i in range(days)],
            "precipitation_sum": [0.0 + i for i in range(days)],
            "precipitation_probability_max": [10 * i for i in range(days)],
        },
    }
    return 200, body
