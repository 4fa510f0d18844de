"""Error classification from status AND body (sdk.classify_http), on bodies real servers send."""

from __future__ import annotations

import pytest

from reasonkit.providers.errors_http import classify_http, error_detail

LLAMA_CPP_PYTHON_500 = {
    "error": {
        "message": "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
        "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}]",
        "type": "internal_server_error",
        "param": None,
        "code": None,
    }
}


@pytest.mark.parametrize(
    "status, body, mode, kind",
    [
        # output-mode rejections -> unsupported (the next mode is tried at once)
        (500, LLAMA_CPP_PYTHON_500, "json_schema", "unsupported"),
        (
            400,
            {"error": "'response_format.type' must be 'json_schema' or 'text'"},
            "json_object",
            "unsupported",
        ),
        (
            422,
            {"detail": [{"loc": ["body", "tools"], "msg": "Extra inputs are not permitted"}]},
            "tools",
            "unsupported",
        ),
        (400, {"error": {"message": "tool_choice is not supported"}}, "tools", "unsupported"),
        (501, {"error": {"message": "json_schema not implemented"}}, "json_schema", "unsupported"),
        # the same words when no output field was sent: a plain client error
        (500, LLAMA_CPP_PYTHON_500, "prompt", "bad_request"),
        (400, {"error": {"message": "tools are not supported"}}, None, "bad_request"),
        # a validation error about something else, even as a 500: a client error, never retried
        (
            500,
            {"detail": [{"loc": ["body", "max_tokens"], "msg": "Input should be a valid integer"}]},
            "json_schema",
            "bad_request",
        ),
        (400, {"error": {"message": "messages: bad field"}}, "json_schema", "bad_request"),
        # real server faults stay retryable
        (500, {"error": {"message": "CUDA out of memory"}}, "json_schema", "server"),
        (503, {"error": {"message": "loading model"}}, "json_schema", "server"),
        (429, {"error": {"message": "slow down"}}, "json_schema", "rate_limit"),
        (401, {"error": {"message": "bad key"}}, "json_schema", "auth"),
        # unknown model
        (
            404,
            {"error": {"message": 'model "x" not found, try pulling it first'}},
            "json_schema",
            "not_found",
        ),
        (
            400,
            {"error": {"message": "The model `x` does not exist", "code": "model_not_found"}},
            None,
            "not_found",
        ),
        # context overflow
        (
            400,
            {"error": {"message": "the request exceeds the available context size"}},
            "json_schema",
            "context_overflow",
        ),
        (400, {"error": {"message": "too many tokens in the prompt"}}, "tools", "context_overflow"),
    ],
)
def test_kinds(status, body, mode, kind):
    assert classify_http("p", status, body, mode=mode).kind == kind


@pytest.mark.parametrize(
    "message, requested, window",
    [
        ("Requested tokens (5000) exceed context window of 4096", 5000, 4096),
        (
            "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
            "(4000 in the messages, 1000 in the completion).",
            5000,
            4096,
        ),
        (
            "request (5000 tokens) exceeds the available context size (4096 tokens), try increasing it",
            5000,
            4096,
        ),
        ("prompt is too long: 5000 tokens > 4096 maximum", 5000, 4096),
        (
            "This model's maximum context length is 4096 tokens. "
            "However, your messages resulted in 5000 tokens.",
            5000,
            4096,
        ),
    ],
)
def test_context_overflow_sizes(message, requested, window):
    err = classify_http("p", 400, {"error": {"message": message}})
    assert err.kind == "context_overflow" and not err.retryable
    assert f"{requested} tokens requested, the window is {window}" in err.message


# Measured: llama-cpp-python 0.3 (`python -m llama_cpp.server`) answering max_tokens="abc".
LLAMA_CPP_PYTHON_BAD_INT = {
    "error": {
        "message": "1 validation error:\n  {'type': 'int_parsing', 'loc': ('body', 'max_tokens'), 'msg': "
        "'Input should be a valid integer, unable to parse string as an integer', 'input': 'abc'}\n\n"
        '  File "llama_cpp/server/app.py", line 376, in create_chat_completion\n'
        "    POST /v1/chat/completions",
        "type": "internal_server_error",
        "param": None,
        "code": None,
    }
}


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "tools"])
def test_measured_llama_cpp_python_validation_error_is_a_bad_request(mode):
    err = classify_http("p", 500, LLAMA_CPP_PYTHON_BAD_INT, mode=mode)
    assert err.kind == "bad_request" and not err.retryable
    assert "request-validation error" in err.message and "max_tokens" in err.message


def test_raw_text_body_and_retry_after():
    err = classify_http("p", 503, None, "upstream unavailable", retry_after=2.0)
    assert err.kind == "server" and err.retry_after == 2.0 and "upstream unavailable" in err.message


def test_error_detail_shapes():
    assert error_detail({"error": {"message": "m"}}) == "m"
    assert error_detail({"object": "error", "message": "vllm says"}) == "vllm says"
    assert error_detail({"error": "plain"}) == "plain"
    assert error_detail({"detail": [{"loc": ["body", "x"], "msg": "bad"}]}) == "body.x: bad"
    assert error_detail(None, "raw text") == "raw text"


@pytest.mark.parametrize(
    ("status", "message", "leak"),
    [
        (
            401,
            "Incorrect API key provided: sk-abc12***************xyz9. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            ("abc12", "xyz9"),
        ),
        (401, "Incorrect API key provided: gsk_live1234abcd.", ("live1234",)),
        (403, "key ab12****cd34 is revoked", ("ab12", "cd34")),
        (400, "sent Authorization: Bearer eyJhbGciOi.secret-part", ("eyJhbGciOi",)),
        (401, "invalid api key sk-or-v1-0123456789abcdef", ("0123456789",)),
    ],
)
def test_key_echoes_never_reach_the_error_message(status, message, leak):
    """What providers echo of a rejected key is scrubbed before the message is stored or shown."""
    err = classify_http("openai", status, {"error": {"message": message}})
    assert not any(part in str(err) for part in leak), str(err)
    assert "***" in str(err)


def test_key_echo_scrubbing_keeps_plain_messages():
    for text in (
        "invalid x-api-key",
        "API key not valid. Please pass a valid API key.",
        "Your API key expired",
    ):
        assert error_detail({"error": {"message": text}}) == text
