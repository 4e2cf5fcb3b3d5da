"""Fidelity of the OpenAI and Anthropic mocks against the official Python SDKs.

The SDKs were written by the providers, not by us: if they parse what the mocks send
(bodies, SSE streams, tool calls, usage, errors), the mocks speak the real wire format.

Needs: pip install openai anthropic pytest
Runs the `gatez-mocks` binary named by $GATEZ_MOCKS_BIN (the Rust test
`python_sdk_fidelity` sets it), else the debug build under $CARGO_TARGET_DIR.
"""

import json
import os
import socket
import subprocess
import tempfile
import time

import anthropic
import openai
import pytest

OPENAI_KEY = "sk-fidelity-openai"
ANTHROPIC_KEY = "sk-ant-fidelity"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary() -> str:
    if os.environ.get("GATEZ_MOCKS_BIN"):
        return os.environ["GATEZ_MOCKS_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    return os.path.join(target, "debug", "gatez-mocks")


@pytest.fixture(scope="session")
def mocks():
    ports = {"openai": _free_port(), "anthropic": _free_port()}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "mocks.yaml")
        with open(cfg, "w") as f:
            f.write(
                f"openai: {{port: {ports['openai']}, api_key: {OPENAI_KEY}}}\n"
                f"anthropic: {{port: {ports['anthropic']}, api_key: {ANTHROPIC_KEY}}}\n"
            )
        proc = subprocess.Popen(
            [_binary(), "--config", cfg], stdout=subprocess.PIPE, text=True
        )
        try:
            deadline = time.time() + 60
            for line in proc.stdout:
                if line.strip() == "gatez-mocks ready":
                    break
                if time.time() > deadline:
                    raise RuntimeError("gatez-mocks did not start")
            else:
                raise RuntimeError(f"gatez-mocks exited with {proc.wait()}")
            yield {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture
def oai(mocks):
    return openai.OpenAI(base_url=mocks["openai"] + "/v1", api_key=OPENAI_KEY, max_retries=0)


@pytest.fixture
def claude(mocks):
    return anthropic.Anthropic(base_url=mocks["anthropic"], api_key=ANTHROPIC_KEY, max_retries=0)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


# --- OpenAI -----------------------------------------------------------------------------


def test_openai_chat_completion(oai):
    r = oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello fidelity"}]
    )
    assert r.object == "chat.completion"
    assert r.choices[0].message.content == "hello fidelity"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == 2
    assert r.usage.total_tokens == r.usage.prompt_tokens + 2


def test_openai_stream_with_usage(oai):
    stream = oai.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "streaming works fine"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish, pieces = "", None, None, 0
    for chunk in stream:
        if chunk.choices:
            piece = chunk.choices[0].delta.content or ""
            text += piece
            pieces += bool(piece)
            finish = finish or chunk.choices[0].finish_reason
        if chunk.usage:
            usage = chunk.usage
    assert text == "streaming works fine"
    assert finish == "stop"
    # One chunk per token, and the usage chunk counts them.
    assert usage is not None and usage.completion_tokens == pieces


def test_openai_streamed_tool_call(oai):
    stream = oai.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": '[[tool:get_weather {"city": "Nantes"}]]'}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    name, args, finish = None, "", None
    for chunk in stream:
        delta = chunk.choices[0].delta
        finish = finish or chunk.choices[0].finish_reason
        for call in delta.tool_calls or []:
            name = name or call.function.name
            args += call.function.arguments or ""
    assert name == "get_weather"
    assert json.loads(args) == {"city": "Nantes"}
    assert finish == "tool_calls"


def test_openai_stream_helper_accumulates_tool_calls(oai):
    with oai.chat.completions.stream(
        model="gpt-4o",
        messages=[{"role": "user", "content": '[[tool:get_weather {"city": "Oslo"}]]'}],
        tools=[WEATHER_TOOL],
    ) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}


def test_openai_embeddings_and_models(oai):
    # The SDK asks for base64 by default and decodes it itself.
    e = oai.embeddings.create(model="text-embedding-3-small", input=["a cat", "a dog"], dimensions=16)
    assert len(e.data) == 2 and len(e.data[0].embedding) == 16
    norm = sum(x * x for x in e.data[0].embedding)
    assert abs(norm - 1.0) < 1e-4
    floats = oai.embeddings.create(
        model="text-embedding-3-small", input="a cat", dimensions=16, encoding_format="float"
    )
    assert floats.data[0].embedding == pytest.approx(e.data[0].embedding)
    assert "gpt-4o" in [m.id for m in oai.models.list()]


def test_openai_errors(mocks, oai):
    bad = openai.OpenAI(base_url=mocks["openai"] + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        bad.models.list()
    assert err.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.RateLimitError) as err:
        oai.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-mock-fault": "status=429;retry_after=1"},
        )
    assert err.value.response.headers["retry-after"] == "1"


# --- Anthropic --------------------------------------------------------------------------


def test_anthropic_message(claude):
    m = claude.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=[{"role": "user", "content": "hello world"}],
    )
    assert m.type == "message"
    assert m.content[0].type == "text" and m.content[0].text == "hello world"
    assert m.stop_reason == "end_turn"
    assert m.usage.output_tokens == 2


def test_anthropic_stream_helper(claude):
    with claude.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=[{"role": "user", "content": "a streamed answer"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "a streamed answer"
    assert final.content[0].text == "a streamed answer"
    assert final.usage.output_tokens == 3
    assert final.stop_reason == "end_turn"


def test_anthropic_raw_event_types(claude):
    events = claude.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        stream=True,
        messages=[{"role": "user", "content": "two words"}],
    )
    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-1] == "message_stop"
    assert "content_block_delta" in types and "message_delta" in types


def test_anthropic_streamed_tool_use(claude):
    tools = [{"name": "lookup", "description": "search", "input_schema": {"type": "object"}}]
    with claude.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=64,
        tools=tools,
        messages=[{"role": "user", "content": '[[tool:lookup {"q": "mcp"}]]'}],
    ) as stream:
        final = stream.get_final_message()
    block = final.content[0]
    assert block.type == "tool_use" and block.name == "lookup"
    assert block.input == {"q": "mcp"}
    assert final.stop_reason == "tool_use"


def test_anthropic_errors(mocks, claude):
    bad = anthropic.Anthropic(base_url=mocks["anthropic"], api_key="sk-ant-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=8,
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-mock-fault": "status=429"},
        )
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="claude-none", max_tokens=8, messages=[{"role": "user", "content": "x"}])
