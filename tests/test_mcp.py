"""kb mcp, driven by the MCP SDK's own client over stdio: tools, errors and resources."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp")
anyio = pytest.importorskip("anyio")

from kb import KnowledgeBase  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures/minimal"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mcp") / "kb"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns(".kb"))
    KnowledgeBase(root).build()
    return root


async def session_run(root: Path, steps):
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = {k: v for k, v in os.environ.items() if k not in ("KB_DATABASE_URL", "KB_ROOT")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "kb", "mcp", "--root", str(root)], env=env,
                                   cwd=str(root))
    with anyio.fail_after(120):
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                return init, await steps(session)


def run(root, steps):
    return anyio.run(session_run, root, steps)


def text_of(result) -> str:
    return "".join(block.text for block in result.content if getattr(block, "type", "") == "text")


def test_tools_answer_with_the_cli_shapes_and_errors_do_not_stop_the_server(root, runner):
    from kb.cli import cli

    async def steps(session):
        tools = await session.list_tools()
        query = await session.call_tool("query", {"question": "explain my CNN's prediction", "limit": 2})
        show = await session.call_tool("show", {"ref": "method:integrated-gradients"})
        missing = await session.call_tool("show", {"ref": "method:no-such-method"})
        bad_facet = await session.call_tool("query", {"question": "x", "goal": "nope"})
        listing = await session.call_tool("list", {"kind": "method"})
        path = await session.call_tool("path", {"to": "method:integrated-gradients", "know": ["concept:gradient"]})
        bib = await session.call_tool("bib", {"refs": ["method:saliency-maps"]})
        bad_limit = await session.call_tool("query", {"question": "explain my CNN", "limit": 0})
        after = await session.call_tool("show", {"ref": "saliency-maps"})  # still answering
        return tools, query, show, missing, bad_facet, listing, path, bib, bad_limit, after

    init, (tools, query, show, missing, bad_facet, listing, path, bib, bad_limit, after) = run(root, steps)
    assert init.server_info.name == "interp-kb"
    by_name = {t.name: t for t in tools.tools}
    assert set(by_name) == {"query", "show", "search", "path", "list", "bib"}
    assert by_name["query"].input_schema["required"] == ["question"]
    assert by_name["path"].input_schema["properties"]["know"]["type"] == "array"
    assert by_name["show"].output_schema and by_name["query"].annotations.read_only_hint

    assert not query.is_error
    answer = json.loads(text_of(query))
    assert answer == query.structured_content
    cli_answer = json.loads(runner.invoke(cli, ["--root", str(root), "query", "explain my CNN's prediction", "-n", "2",
                                                "--format", "json"]).output)
    assert answer["results"] == cli_answer["results"]

    record = json.loads(text_of(show))
    assert record["ref"] == "method:integrated-gradients" and record["links_out"]

    assert missing.is_error
    error = json.loads(text_of(missing))
    assert error["code"] == "not-found" and error["param"] == "ref" and "no record" in error["detail"]
    assert bad_facet.is_error and json.loads(text_of(bad_facet))["param"] == "goal"
    assert "--" not in text_of(bad_facet)

    assert [r["ref"] for r in json.loads(text_of(listing))] == ["method:integrated-gradients", "method:saliency-maps"]
    assert listing.structured_content["result"][0]["kind"] == "method"
    assert json.loads(text_of(path))["known"] == ["concept:gradient"]
    assert "@" in text_of(bib)
    assert bad_limit.is_error and json.loads(text_of(bad_limit))["code"] == "invalid-parameter"
    assert json.loads(text_of(bad_limit))["param"] == "limit"
    assert not after.is_error and json.loads(text_of(after))["name"]


def test_records_are_resources(root):
    from mcp.shared.exceptions import MCPError

    async def steps(session):
        listed = await session.list_resources()
        templates = await session.list_resource_templates()
        read = await session.read_resource("kb://method/integrated-gradients")
        try:
            await session.read_resource("kb://method/no-such-method")
            unknown = None
        except MCPError as exc:
            unknown = exc
        again = await session.read_resource("kb://concept/gradient")
        return listed, templates, read, unknown, again

    _, (listed, templates, read, unknown, again) = run(root, steps)
    uris = {str(r.uri) for r in listed.resources}
    assert "kb://method/integrated-gradients" in uris and "kb://paper/sundararajan2017axiomatic" in uris
    assert [t.uri_template for t in templates.resource_templates] == ["kb://{kind}/{ident}"]
    data = json.loads(read.contents[0].text)
    assert data["ref"] == "method:integrated-gradients" and read.contents[0].mime_type == "application/json"
    assert unknown is not None and "no record" in str(unknown)
    assert json.loads(again.contents[0].text)["id"] == "gradient"
