"""The Telegram floor: python-telegram-bot polling, one streamed openai call per message,
the answer sent with sendMessage. Nothing else (no storage, no tools, no dedup).

Usage: python -P tests/bench/_floor_ptb.py BOT_API_BASE_URL TOKEN OPENAI_BASE_URL
"""

import sys

from openai import AsyncOpenAI
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

base_url, token, model_url = sys.argv[1:4]
llm = AsyncOpenAI(base_url=model_url, api_key="sk-floor", max_retries=0)


async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.message.text is not None
    stream = await llm.chat.completions.create(
        model="floor", messages=[{"role": "user", "content": update.message.text}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    await update.message.reply_text(text, do_quote=False)


app = Application.builder().token(token).base_url(base_url).concurrent_updates(True).build()
app.add_handler(MessageHandler(filters.TEXT, answer))
app.run_polling(poll_interval=0, timeout=10)
