"""The Slack floor: a slack-bolt AsyncApp (its own aiohttp server) that makes one streamed
openai call per DM and says the answer in the thread. Nothing else (no dedup, no tools).
With --echo it makes no model call and says the text back (the bare bolt echo).

Usage: python -P tests/bench/_floor_bolt.py PORT SLACK_API_URL SIGNING_SECRET OPENAI_URL [--echo]
"""

import sys

from openai import AsyncOpenAI
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

port, api_url, secret, model_url = sys.argv[1:5]
echo = "--echo" in sys.argv
llm = AsyncOpenAI(base_url=model_url, api_key="sk-floor", max_retries=0)
client = AsyncWebClient(token="xoxb-floor", base_url=api_url)
app = AsyncApp(client=client, signing_secret=secret)


@app.event("message")
async def answer(event: dict, say) -> None:  # type: ignore[no-untyped-def]
    text = event["text"]
    if not echo:
        stream = await llm.chat.completions.create(
            model="floor", messages=[{"role": "user", "content": text}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    await say(text=text, thread_ts=event["ts"])


app.start(port=int(port), path="/slack/events", host="127.0.0.1")
