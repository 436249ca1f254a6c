import pytest

from kefu.errors import BadInput
from kefu.inbound import optional_str, parse_inbound


def test_valid_message_is_normalised():
    inbound = parse_inbound({"sender": "web-1", "message": " 你好\x00 "}, max_chars=100)
    assert (inbound.sender_id, inbound.text, inbound.truncated) == ("web-1", "你好", False)


def test_long_message_is_truncated_not_rejected():
    inbound = parse_inbound({"sender": "a", "message": "很" * 20000}, max_chars=2000)
    assert len(inbound.text) == 2000 and inbound.truncated


@pytest.mark.parametrize(
    "payload, reason",
    [
        ([1, 2], "JSON object"),
        ("text", "JSON object"),
        ({"message": "hi"}, "'sender'"),
        ({"sender": "", "message": "hi"}, "'sender'"),
        ({"sender": 42, "message": "hi"}, "'sender'"),
        ({"sender": "x" * 200, "message": "hi"}, "at most 128"),
        ({"sender": "<script>", "message": "hi"}, "letters, digits"),
        ({"sender": "a", "message": {"$ne": 1}}, "'message' must be a string"),
        ({"sender": "a", "message": "hi", "metadata": "x"}, "'metadata'"),
        ({"sender": "a", "message": "hi", "metadata": {str(i): i for i in range(50)}}, "'metadata'"),
    ],
)
def test_malformed_payloads_are_rejected(payload, reason):
    with pytest.raises(BadInput, match=reason) as info:
        parse_inbound(payload, max_chars=100)
    assert info.value.status == 400


def test_missing_or_null_message_is_empty_text():
    assert parse_inbound({"sender": "a"}, max_chars=10).text == ""
    assert parse_inbound({"sender": "a", "message": None}, max_chars=10).text == ""


def test_optional_str():
    assert optional_str("abc123") == "abc123"
    assert optional_str({"a": 1}) is None and optional_str("") is None and optional_str("a b") is None
