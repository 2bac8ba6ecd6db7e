"""Weather against a local Open-Meteo stand-in, through the real httpx client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from bot.domain import ToolServices
from tests.fakes.open_meteo import OpenMeteoServer
from tests.tools.helpers import call, context
from tools.weather import OpenMeteo, WeatherParams, get_weather


def client_of(open_meteo: OpenMeteoServer, timeout: float) -> OpenMeteo:
    return OpenMeteo(
        geocoding_url=open_meteo.geocoding_url,
        forecast_url=open_meteo.forecast_url,
        timeout=timeout,
        cache_seconds=600,
    )


@pytest.fixture
async def weather(open_meteo: OpenMeteoServer) -> AsyncIterator[OpenMeteo]:
    # A deadline for a healthy answer, generous for a busy machine; the slow test
    # below makes its own impatient client.
    client = client_of(open_meteo, timeout=10)
    yield client
    await client.aclose()


async def ask(weather: OpenMeteo, **arguments: object) -> tuple[bool, str]:
    result = await call(get_weather, dict(arguments), context(ToolServices(weather=weather)))
    return result.is_error, result.content


async def test_a_place_name_in_any_language_gives_current_and_daily(
    weather: OpenMeteo, open_meteo: OpenMeteoServer
) -> None:
    is_error, content = await ask(weather, place="北京", days=3)

    assert not is_error
    report = json.loads(content)
    assert report["place"] == "Beijing, Beijing, China"
    assert report["current"]["conditions"] == "slight rain"
    assert report["current"]["temperature"] == "12.5 °C"
    assert [day["conditions"] for day in report["daily"]] == [
        "clear sky",
        "overcast",
        "slight rain",
    ]
    (path, geo), (_, forecast) = open_meteo.requests
    assert path == "/v1/search" and geo["name"] == "北京"
    assert forecast["forecast_days"] == "3" and forecast["latitude"] == "39.9075"
    assert "temperature_unit" not in forecast


async def test_imperial_units_on_request(weather: OpenMeteo, open_meteo: OpenMeteoServer) -> None:
    is_error, content = await ask(weather, place="San Francisco", units="imperial")

    assert not is_error
    assert json.loads(content)["current"]["temperature"] == "54.5 °F"
    forecast = open_meteo.requests[-1][1]
    assert forecast["temperature_unit"] == "fahrenheit" and forecast["wind_speed_unit"] == "mph"


async def test_an_ambiguous_name_follows_the_country_hint(
    weather: OpenMeteo, open_meteo: OpenMeteoServer
) -> None:
    _, biggest = await ask(weather, place="Sydney")
    _, canada = await ask(weather, place="Sydney", country="Canada")
    _, by_code = await ask(weather, place="Sydney", country="CA")

    assert json.loads(biggest)["place"] == "Sydney, New South Wales, Australia"
    assert json.loads(biggest)["other_places_with_that_name"] == ["Sydney, Nova Scotia, Canada"]
    assert json.loads(canada)["place"] == "Sydney, Nova Scotia, Canada"
    assert json.loads(by_code)["place"] == "Sydney, Nova Scotia, Canada"
    searches = [query for path, query in open_meteo.requests if path == "/v1/search"]
    assert [query.get("countryCode") for query in searches] == [
        None,
        "CA",
    ]  # "Canada" reuses the cached search


async def test_coordinates_skip_geocoding(weather: OpenMeteo, open_meteo: OpenMeteoServer) -> None:
    is_error, content = await ask(weather, latitude=30.25, longitude=120.17)

    assert not is_error and json.loads(content)["place"] == "30.2500, 120.1700"
    assert [path for path, _ in open_meteo.requests] == ["/v1/forecast"]


async def test_an_unknown_place_is_a_clear_error(weather: OpenMeteo) -> None:
    is_error, content = await ask(weather, place="Atlantis")

    assert is_error and "No place called 'Atlantis' was found" in content


async def test_upstream_500_is_a_clear_error(
    weather: OpenMeteo, open_meteo: OpenMeteoServer
) -> None:
    open_meteo.fail_status = 500

    is_error, content = await ask(weather, place="Beijing")

    assert is_error and "weather service is having trouble (HTTP 500)" in content


async def test_a_slow_upstream_times_out_with_a_clear_error(open_meteo: OpenMeteoServer) -> None:
    open_meteo.delay = 1.5
    impatient = client_of(open_meteo, timeout=0.5)
    try:
        is_error, content = await ask(impatient, place="Beijing")
    finally:
        await impatient.aclose()

    assert is_error and "did not answer in time" in content


async def test_the_same_place_within_the_hour_is_served_from_the_cache(
    weather: OpenMeteo, open_meteo: OpenMeteoServer
) -> None:
    first = await ask(weather, place="Beijing", days=2)
    second = await ask(weather, place="Beijing", days=2)

    assert first == second and not first[0]
    assert len(open_meteo.requests) == 2 and weather.upstream_calls == 2
    await ask(weather, place="Beijing", days=3)
    assert [path for path, _ in open_meteo.requests[2:]] == ["/v1/forecast"]


async def test_without_the_service_the_tool_says_so() -> None:
    result = await call(get_weather, {"place": "Beijing"}, context(ToolServices()))
    assert result.is_error and "not available" in result.content


def test_a_running_weather_call_names_its_place() -> None:
    line = get_weather.progress_of(WeatherParams(place="Beijing"))
    assert (line.text, dict(line.values)) == (
        "Checking the weather in {place}…",
        {"place": "Beijing"},
    )
