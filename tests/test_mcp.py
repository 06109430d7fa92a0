"""The app as an MCP server (app.py --mcp, or env FER_MCP=1): an MCP client lists the public endpoints as tools,
described by their docstrings, and calls one."""

from __future__ import annotations

import ast
import asyncio
import base64

import pytest

from fer_demo.core.paths import EXAMPLES_DIR
from fer_demo.serve import MCP_ENV, parse_args

PUBLIC = {"predict", "explain", "confusion", "test_report", "video"}  # /predict ... as the API page lists them


def test_mcp_is_off_unless_asked(monkeypatch):
    monkeypatch.delenv(MCP_ENV, raising=False)
    assert parse_args([]).mcp is False and parse_args(["--mcp"]).mcp is True
    monkeypatch.setenv(MCP_ENV, "1")
    assert parse_args([]).mcp is True


def _client(url: str, work):
    """Runs an MCP client session to its end on a thread of its own: under xdist, the worker that ran the browser
    tests keeps the session Chromium's Playwright event loop running on its main thread, where asyncio.run
    refuses to start another."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _session(url, work)).result()


async def _session(url: str, work):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async with streamablehttp_client(f"{url}gradio_api/mcp/") as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)


@pytest.fixture(scope="module")
def mcp_app(tmp_path_factory):
    from fer_demo_testing.local_app import LaunchError, launched_app

    try:
        with launched_app(env={MCP_ENV: "1", "OMP_NUM_THREADS": "1"},
                          log_path=tmp_path_factory.mktemp("mcp") / "app.log", timeout=180) as server:
            yield server.url
    except LaunchError as e:
        pytest.fail(str(e))


@pytest.mark.slow
def test_an_mcp_client_lists_the_endpoints_as_tools_described_by_their_docstrings(mcp_app):
    from gradio_client import Client

    tools = {t.name: t for t in _client(mcp_app, lambda s: s.list_tools()).tools}
    api = Client(mcp_app, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {name.lstrip("/") for name in api} >= PUBLIC
    assert set(tools) == {name.lstrip("/") for name in api}, "one tool per public endpoint, named as it is"
    assert tools["predict"].description.startswith("Find the faces in a photo and classify each")
    assert tools["explain"].description.startswith("Explain one face")
    assert {"photo", "whole_image", "tta"} <= set(tools["predict"].inputSchema["properties"])
    for tool in tools.values():
        assert len(tool.description) > 40, tool.name


@pytest.mark.slow
def test_an_mcp_client_calls_predict(mcp_app):
    jpeg = (EXAMPLES_DIR / "photos" / "group_collage.jpg").read_bytes()
    photo = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()  # how an MCP client may send a file

    async def call(session):
        return await session.call_tool("predict", {"photo": photo, "whole_image": False, "tta": False})

    result = _client(mcp_app, call)
    assert not result.isError, result.content
    (text,) = [c.text for c in result.content]  # one output: the JSON answer, without the tab's gr.State
    answer = ast.literal_eval(text)  # Gradio's MCP server sends a dict as Python's str() of it
    assert isinstance(answer, dict), text[:300]
    assert answer["n_faces"] == 4 and answer["tta"]["name"] == "none"
