"""One JSON contract: --format json, the HTTP API and the Python API give the shapes of kb.contract."""
from __future__ import annotations

import json

import pytest

from kb import KnowledgeBase
from kb.cli import cli
from kb.contract import MODELS, ErrorBody

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

COMMANDS = {
    "list": ["list"],
    "show": ["show", "method:integrated-gradients"],
    "search": ["search", "gradient"],
    "query": ["query", "explain my CNN's prediction"],
    "path": ["path", "--to", "method:integrated-gradients"],
    "graph": ["graph", "--around", "saliency-maps", "--depth", "1"],
    "info": ["info"],
}
HTTP = {
    "list": "/records",
    "show": "/records/method/integrated-gradients",
    "search": "/search?q=gradient",
    "query": "/query?q=explain my CNN's prediction",
    "path": "/path?to=method:integrated-gradients",
    "graph": "/graph?around=saliency-maps&depth=1",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    import shutil
    from pathlib import Path

    root = tmp_path_factory.mktemp("contract") / "kb"
    shutil.copytree(Path(__file__).parent / "fixtures/minimal", root, ignore=shutil.ignore_patterns(".kb"))
    KnowledgeBase(root).build()
    return root


@pytest.fixture(scope="module")
def client(built):
    from fastapi.testclient import TestClient

    from kb.server import create_app

    return TestClient(create_app(built))


def cli_json(root, args):
    from click.testing import CliRunner

    out = CliRunner().invoke(cli, [*args, "--format", "json", "--root", str(root)])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_cli_json_has_the_contract_shape(built, name):
    from pydantic import TypeAdapter

    TypeAdapter(MODELS[name]).validate_python(cli_json(built, COMMANDS[name]))


@pytest.mark.parametrize("name", sorted(HTTP))
def test_http_answers_what_the_cli_prints(built, client, name):
    response = client.get(HTTP[name])
    assert response.status_code == 200, response.text
    assert response.json() == cli_json(built, COMMANDS[name])


def test_every_record_is_named_by_ref_kind_and_id(built):
    kb = KnowledgeBase(built)
    named = (kb.list() + kb.search("gradient") + kb.path("method:integrated-gradients")["steps"]
             + kb.graph_data()["nodes"] + kb.query("explain my CNN's prediction")["results"])
    for item in named:
        assert item["ref"] == f"{item['kind']}:{item['id']}", item
    assert kb.show("integrated-gradients")["ref"] == "method:integrated-gradients"


def test_openapi_describes_every_answer_with_a_model(client):
    doc = client.get("/openapi.json").json()
    for path, ops in doc["paths"].items():
        schema = ops["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema.get("$ref") or schema.get("items", {}).get("$ref"), (path, schema)
        assert ops["get"]["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert {"QueryAnswer", "PathAnswer", "Graph", "Record", "RecordRef", "SearchHit", "ErrorBody"} <= set(doc["components"]["schemas"])


@pytest.mark.parametrize("path, status, code, param", [
    ("/records/method/nope", 404, "not-found", "ref"),
    ("/query?q=x&goal=nope", 400, "bad-request", "goal"),
    ("/query?q=x&access=telepathy", 422, "invalid-parameter", "access"),
    ("/path", 400, "bad-request", "to"),
    ("/graph?around=saliency-maps&depth=-1", 422, "invalid-parameter", "depth"),
])
def test_one_error_shape_without_command_line_wording(client, path, status, code, param):
    response = client.get(path)
    assert response.status_code == status
    body = ErrorBody.model_validate(response.json())
    assert (body.code, body.param) == (code, param)
    assert "--" not in body.detail and "`kb " not in body.detail


def test_python_api_takes_lists_where_it_means_lists(built):
    kb = KnowledgeBase(built)
    as_list = kb.path("method:integrated-gradients", know=["concept:gradient"])
    assert kb.path("method:integrated-gradients", know="concept:gradient") == as_list
    assert kb.path("method:integrated-gradients", know="concept:gradient, ") == as_list
    assert as_list["known"] == ["concept:gradient"]
    assert kb.bib("method:saliency-maps") == kb.bib(["method:saliency-maps"])
    with pytest.raises(Exception, match="list of record refs"):
        kb.path("method:integrated-gradients", know=42)
