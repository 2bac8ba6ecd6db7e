"""Markdown to Telegram HTML, and splitting long answers."""

from __future__ import annotations

import pytest

from integrations.telegram.formatting import (
    is_balanced,
    markdown_to_html,
    split_markdown,
    utf16_len,
    visible_text,
)


@pytest.mark.parametrize(
    ("markdown", "html"),
    [
        ("**bold** and *italic*", "<b>bold</b> and <i>italic</i>"),
        ("__bold__ _it_ ~~gone~~", "<b>bold</b> <i>it</i> <s>gone</s>"),
        ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
        ("snake_case_name and 2*3*4", "snake_case_name and 2*3*4"),
        ("`x<y` **`code` in bold**", "<code>x&lt;y</code> <b><code>code</code> in bold</b>"),
        ("[site](https://a.test/?q=1&r=2)", '<a href="https://a.test/?q=1&amp;r=2">site</a>'),
        ("[bad](javascript:alert(1))", "[bad](javascript:alert(1))"),
        ("# Title\n- one\n- two", "<b>Title</b>\n• one\n• two"),
        (
            "```python\nif a<b:\n    pass\n```",
            '<pre><code class="language-python">if a&lt;b:\n    pass</code></pre>',
        ),
        ("**unclosed and *half", "**unclosed and *half"),
        ("**a *b** c*", "<b>a *b</b> c*"),
    ],
)
def test_markdown_renders_to_balanced_telegram_html(markdown: str, html: str) -> None:
    rendered = markdown_to_html(markdown)

    assert rendered == html
    assert is_balanced(rendered)


def test_an_unclosed_code_fence_still_renders_balanced() -> None:
    rendered = markdown_to_html("Here:\n```\nprint('hi')")
    assert is_balanced(rendered) and "<pre><code>print('hi')</code></pre>" in rendered


def test_visible_text_is_what_the_reader_sees() -> None:
    assert visible_text(markdown_to_html("**a** & <b>")) == "a & <b>"


def test_short_text_is_one_part() -> None:
    assert split_markdown("  hello  ") == ["hello"]
    assert split_markdown("   ") == []


def test_long_text_splits_at_paragraphs_then_lines_then_spaces() -> None:
    paragraph = "word " * 150
    text = "\n\n".join([paragraph.strip()] * 12)
    parts = split_markdown(text, limit=1000)
    assert all(utf16_len(p) <= 1000 for p in parts)
    assert all(p == paragraph.strip() for p in parts)

    one_line = "x" * 50 + " " + "y" * 3000
    assert all(utf16_len(p) <= 1000 for p in split_markdown(one_line, limit=1000))
    assert "".join(split_markdown(one_line, limit=1000)).replace(" ", "") == one_line.replace(
        " ", ""
    )


def test_limits_count_utf16_units() -> None:
    text = "😀" * 1500  # 3000 UTF-16 units
    parts = split_markdown(text, limit=1000)
    assert all(utf16_len(p) <= 1000 for p in parts) and "".join(parts) == text


def test_a_split_code_block_is_closed_and_reopened() -> None:
    text = "Intro\n\n```sql\n" + "SELECT 1;\n" * 300 + "```\nDone."
    parts = split_markdown(text, limit=1000)
    assert len(parts) > 2
    for part in parts:
        assert part.count("```") % 2 == 0, part
        assert is_balanced(markdown_to_html(part))
    assert parts[1].startswith("```sql\n")
