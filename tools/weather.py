"""Weather: current conditions and a daily forecast from Open-Meteo (no API key).

`OpenMeteo` is the client (geocoding + forecast over httpx, with a short cache keyed by
place and hour); the composition root builds one from settings and hands it to the tool
as `ToolContext.services.weather`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from bot.domain import ToolContext
from bot.errors import ToolError
from bot.toolkit import N_, Progress, tool

WMO_CODES = {
    0: "clear sky",
    1: "mainly clear",
    2: "partly cloudy",
    3: "overcast",
    45: "fog",
    48: "depositing rime fog",
    51: "light drizzle",
    53: "moderate drizzle",
    55: "dense drizzle",
    56: "light freezing drizzle",
    57: "dense freezing drizzle",
    61: "slight rain",
    63: "moderate rain",
    65: "heavy rain",
    66: "light freezing rain",
    67: "heavy freezing rain",
    71: "slight snow",
    73: "moderate snow",
    75: "heavy snow",
    77: "snow grains",
    80: "slight rain showers",
    81: "moderate rain showers",
    82: "violent rain showers",
    85: "slight snow showers",
    86: "heavy snow showers",
    95: "thunderstorm",
    96: "thunderstorm with slight hail",
    99: "thunderstorm with heavy hail",
}

CURRENT = (
    "temperature_2m,apparent_temperature,relative_humidity_2m,precipitation,"
    "weather_code,wind_speed_10m"
)
DAILY = (
    "weather_code,temperature_2m_max,temperature_2m_min,precipitation_sum,"
    "precipitation_probability_max"
)
CACHE_ENTRIES = 512


def describe_code(code: Any) -> str:
    if isinstance(code, int | float) and int(code) in WMO_CODES:
        return WMO_CODES[int(code)]
    return f"unknown conditions (code {code})"


class OpenMeteo:
    """Open-Meteo geocoding and forecast client; a `WeatherSource`. Close with `aclose()`."""

    def __init__(
        self,
        *,
        geocoding_url: str,
        forecast_url: str,
        timeout: float = 10.0,
        cache_seconds: float = 600.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.geocoding_url = geocoding_url
        self.forecast_url = forecast_url
        self.cache_seconds = cache_seconds
        self.client = client or httpx.AsyncClient(timeout=timeout)
        self._cache: OrderedDict[tuple[Any, ...], tuple[float, Any]] = OrderedDict()
        self.upstream_calls = 0

    async def aclose(self) -> None:
        await self.client.aclose()

    async def report(
        self,
        *,
        place: str | None,
        country: str | None,
        latitude: float | None,
        longitude: float | None,
        days: int,
        units: Literal["metric", "imperial"],
    ) -> dict[str, Any]:
        if latitude is not None and longitude is not None:
            location: dict[str, Any] = {
                "name": f"{latitude:.4f}, {longitude:.4f}",
                "latitude": latitude,
                "longitude": longitude,
            }
            others: list[str] = []
        elif place:
            location, others = await self.geocode(place, country)
        else:
            raise ToolError("Give a place name, or both latitude and longitude.")
        forecast = await self.forecast(location["latitude"], location["longitude"], days, units)
        result = {"place": _place_label(location), **forecast}
        if others:
            result["other_places_with_that_name"] = others
        return result

    async def geocode(self, place: str, country: str | None) -> tuple[dict[str, Any], list[str]]:
        """The best match for `place` (preferring `country`), and labels of the others."""
        params = {"name": place.strip(), "count": "10", "language": "en", "format": "json"}
        hint = (country or "").strip()
        if len(hint) == 2 and hint.isalpha():
            params["countryCode"] = hint.upper()
        data = await self._get(self.geocoding_url, params)
        results = [r for r in data.get("results") or [] if "latitude" in r and "longitude" in r]
        if hint and len(hint) != 2:
            wanted = hint.casefold()
            matching = [r for r in results if str(r.get("country", "")).casefold() == wanted]
            results = matching or results
        if not results:
            where = f" in {hint}" if hint else ""
            raise ToolError(
                f"No place called {place!r}{where} was found. Check the spelling, or give a "
                "bigger nearby town, a country, or coordinates."
            )
        best, rest = results[0], results[1:4]
        return best, [_place_label(r) for r in rest]

    async def forecast(
        self, latitude: float, longitude: float, days: int, units: Literal["metric", "imperial"]
    ) -> dict[str, Any]:
        params = {
            "latitude": f"{latitude:.4f}",
            "longitude": f"{longitude:.4f}",
            "current": CURRENT,
            "daily": DAILY,
            "timezone": "auto",
            "forecast_days": str(days),
        }
        if units == "imperial":
            params.update(
                temperature_unit="fahrenheit", wind_speed_unit="mph", precipitation_unit="inch"
            )
        data = await self._get(self.forecast_url, params)
        return _shape_forecast(data)

    async def _get(self, url: str, params: dict[str, str]) -> dict[str, Any]:
        # Same request in the same hour: answered from the cache.
        key = (url, tuple(sorted(params.items())), int(time.time() // 3600))
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(key)
            data: dict[str, Any] = cached[1]
            return data
        self.upstream_calls += 1
        try:
            response = await self.client.get(url, params=params)
        except httpx.TimeoutException:
            raise ToolError(
                "The weather service did not answer in time; try again in a minute."
            ) from None
        except httpx.HTTPError as exc:
            raise ToolError(
                f"The weather service is unreachable right now ({type(exc).__name__})."
            ) from None
        if response.status_code >= 500:
            raise ToolError(
                f"The weather service is having trouble (HTTP {response.status_code}); "
                "try again later."
            )
        try:
            data = response.json()
        except ValueError:
            raise ToolError("The weather service sent an unreadable answer.") from None
        if response.status_code >= 400 or not isinstance(data, dict):
            reason = data.get("reason") if isinstance(data, dict) else None
            raise ToolError(
                f"The weather service refused the request: {reason or response.status_code}."
            )
        if self.cache_seconds > 0:
            self._cache[key] = (now + self.cache_seconds, data)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return data


def _place_label(location: dict[str, Any]) -> str:
    parts = [location.get("name"), location.get("admin1"), location.get("country")]
    return ", ".join(str(part) for part in parts if part)


def _shape_forecast(data: dict[str, Any]) -> dict[str, Any]:
    units = data.get("current_units") or {}
    daily_units = data.get("daily_units") or {}
    current = data.get("current") or {}
    shaped: dict[str, Any] = {"timezone": data.get("timezone", "")}
    if current:
        shaped["current"] = {
            "time": current.get("time"),
            "conditions": describe_code(current.get("weather_code")),
            "temperature": f"{current.get('temperature_2m')} {units.get('temperature_2m', '')}",
            "feels_like": (
                f"{current.get('apparent_temperature')} {units.get('apparent_temperature', '')}"
            ),
            "humidity": f"{current.get('relative_humidity_2m')} %",
            "precipitation": f"{current.get('precipitation')} {units.get('precipitation', '')}",
            "wind": f"{current.get('wind_speed_10m')} {units.get('wind_speed_10m', '')}",
        }
    daily = data.get("daily") or {}
    days = []
    for index, day in enumerate(daily.get("time") or []):

        def value(name: str, i: int = index) -> Any:
            column = daily.get(name) or []
            return column[i] if i < len(column) else None

        days.append(
            {
                "date": day,
                "conditions": describe_code(value("weather_code")),
                "min": f"{value('temperature_2m_min')} {daily_units.get('temperature_2m_min', '')}",
                "max": f"{value('temperature_2m_max')} {daily_units.get('temperature_2m_max', '')}",
                "precipitation": (
                    f"{value('precipitation_sum')} {daily_units.get('precipitation_sum', '')}"
                ),
                "precipitation_chance": f"{value('precipitation_probability_max')} %",
            }
        )
    if days:
        shaped["daily"] = days
    return shaped


class WeatherParams(BaseModel):
    place: str | None = Field(
        None,
        description="Place name in any language, e.g. 'San Francisco', '北京', 'München'. "
        "Leave empty when giving coordinates.",
    )
    country: str | None = Field(
        None,
        description="Country to prefer for ambiguous names: ISO code ('US') or English "
        "name ('Australia').",
    )
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    days: int = Field(1, ge=1, le=7, description="Days of daily forecast, 1 (today) to 7.")
    units: Literal["metric", "imperial"] = Field(
        "metric", description="'imperial' only when the user asks for °F/mph."
    )


def _progress(params: WeatherParams) -> Progress:
    if params.place:
        return Progress(N_("Checking the weather in {place}…"), (("place", params.place),))
    return Progress(N_("Checking the weather…"))


@tool(timeout=20, progress=_progress, outside=True)
async def get_weather(params: WeatherParams, ctx: ToolContext) -> dict[str, Any]:
    """Get current weather conditions and a daily forecast (up to 7 days) for a place
    name or coordinates. Say which place was found; if the name was ambiguous, the
    result lists other places with that name."""
    source = ctx.services.weather
    if source is None:
        raise ToolError("Weather is not available on this bot.")
    return await source.report(
        place=params.place,
        country=params.country,
        latitude=params.latitude,
        longitude=params.longitude,
        days=params.days,
        units=params.units,
    )
