"""What the floor benchmarks share: the scripted model, and measuring a bot's process.

The model (a child process) answers every question with a 60-word answer streamed in
6-character chunks and no latency (`--model-delay` seconds before the first chunk for a
slow model), except that a question about the weather, when the request offers
`get_weather`, is first answered with a call to it (a fake Open-Meteo in the same child
process answers the tool); a bot offering no tools gets the plain answer. A bot is
measured from outside through /proc: CPU (user + system) between two readings, and its
peak RSS (VmHWM).
"""

from __future__ import annotations

import os
import time
from typing import Any

ANSWER = " ".join(["word"] * 60)
WEATHER_QUESTION = "What is the weather in Beijing?"
TICKS = os.sysconf("SC_CLK_TCK")


def serve_model(queue: Any, delay: float) -> None:
    """Child process: the scripted model and Open-Meteo; puts (model url, geocoding url,
    forecast url) on `queue`, then serves until terminated."""
    from tests.fakes.open_meteo import OpenMeteoServer
    from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply

    answer = text_reply(ANSWER, chunk_size=6, delay=delay)
    weather = tool_call_reply(("get_weather", {"place": "Beijing"}), delay=delay)

    def respond(payload: dict[str, Any]) -> Any:
        messages = payload.get("messages") or [{}]
        last = messages[-1]
        offered = any(
            (t.get("function") or {}).get("name") == "get_weather"
            for t in payload.get("tools") or []
        )
        asks = last.get("role") == "user" and "weather" in str(last.get("content", ""))
        return weather if offered and asks else answer

    model, meteo = ScriptedOpenAIServer(), OpenMeteoServer()
    model.start()
    meteo.start()
    model.set_responder(respond)
    queue.put((model.base_url, meteo.geocoding_url, meteo.forecast_url))
    while True:
        time.sleep(0.5)
        model.requests.clear()
        model.request_headers.clear()
        model.request_clients.clear()
        meteo.requests.clear()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process `pid` so far (its threads included)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0
