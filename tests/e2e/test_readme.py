"""The examples of the README and the docs pages run against the real test server (random
weights: shapes, not answers). Counted across all pages, so an example lost in a move fails."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import subprocess

import pytest

from loadtest.server import ServerProcess
from tests.docs import PAGES, code_blocks, read

from .conftest import API_KEY

README = read("README.md")
BLOCKS = [block for page in PAGES for block in code_blocks(read(page))]
CURL = [code for lang, code in BLOCKS if lang == "bash" and "curl " in code]
PYTHON = [code for lang, code in BLOCKS if lang == "python" and "serving.client" not in code]
CLIENT = [code for lang, code in BLOCKS if lang == "python" and "serving.client" in code]
README_URL = "http://localhost:8000"


def test_readme_has_the_examples() -> None:
    assert len(CURL) == 3
    assert len(PYTHON) == 1
    assert len(CLIENT) == 1
    assert "make serve" in README
    assert "make test" in README
    # The README keeps a first call of each task; the batch call lives in the docs.
    first = [code for lang, code in code_blocks(README) if lang == "bash" and "curl " in code]
    assert len(first) == 2
    assert "/v1/classify " in first[0]
    assert "/v1/extract " in first[1]


@pytest.mark.parametrize("command", CURL, ids=["classify", "extract", "batch"])
def test_curl_example(server: ServerProcess, command: str) -> None:
    command = command.replace(README_URL, server.url).replace(
        "curl -s", f'curl -s -H "Authorization: Bearer {API_KEY}"', 1
    )
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert "error" not in data, data
    if "/v1/classify/batch" in command:
        first, empty, last = data["results"]
        assert first["label"] in ["财经", "体育", "娱乐"]
        assert empty["error"]["param"] == "text"
        assert last["label"] in ["财经", "体育", "娱乐"]
    elif "/v1/classify" in command:
        assert data["label"] in ["财经", "体育", "娱乐", "科技"]
    else:
        assert list(data["fields"]) == ["人物", "地点", "组织机构", "时间"]


def test_openai_example(server: ServerProcess) -> None:
    (code,) = PYTHON
    code = code.replace(README_URL, server.url).replace('api_key="EMPTY"', f'api_key="{API_KEY}"')
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, {})
    assert printed.getvalue().strip()


def test_python_client_example(server: ServerProcess) -> None:
    (code,) = CLIENT
    code = code.replace(README_URL, server.url).replace("api_key=None", f'api_key="{API_KEY}"')
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, {})
    label, fields, batch, healthy, error = printed.getvalue().strip().splitlines()
    assert label.split()[0] in ["财经", "体育", "科技"]
    assert int(label.split()[1]) > 0
    assert list(ast.literal_eval(fields)) == ["人物", "地点", "组织机构"]
    first, blank = ast.literal_eval(batch)
    assert (first in ["财经", "体育"], blank) == (True, "text")
    assert (healthy, error) == ("True", "400 BadRequestError labels")
