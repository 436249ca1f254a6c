import pytest

from kefu.text import detect_language, message_language, normalize_text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("我的卡丢了", "zh"),
        ("I lost my card", "en"),
        ("我的credit card丢了", "zh"),
        ("can i get 发票", "zh"),
        ("where is my order, it's been a week", "en"),
        ("ok 好", "zh"),
        ("🙂🙂🙂", None),
        ("13812345678", None),
        ("SO2411150457", None),
        ("订单SO2411150457", "zh"),
        ("order SO2411150457 please", "en"),
        ("", None),
    ],
)
def test_detect_language(text, expected):
    assert detect_language(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("abcd", None),  # the pilot: typed in a Chinese chat, it switched the replies to English
        ("ok", None),
        ("OK!!", None),
        ("lol", None),
        ("asdf SO2411150457", None),
        ("hi", "en"),
        ("Hello", "en"),
        ("refund?", "en"),
        ("I lost my card", "en"),
        ("my card", "en"),
        ("我的卡丢了", "zh"),
        ("ok 好", "zh"),
        ("🙂", None),
        ("", None),
    ],
)
def test_message_language_is_sticky_on_weak_ascii_evidence(text, expected):
    assert message_language(text) == expected


def test_normalize_removes_controls_and_truncates():
    assert normalize_text("  hi\x00\x07 there\u3000\u3000!  ") == "hi there !"
    assert normalize_text("e\u0301") == "\u00e9"  # NFC
    assert normalize_text("a" * 50, max_chars=10) == "a" * 10
    assert normalize_text("line1\nline2") == "line1\nline2"
    assert normalize_text("\ufeff\ud800x") == "x"
