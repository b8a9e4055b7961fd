"""The Postman collection file is what its source writes, and every variable it uses is in
the environment template or set by the collection itself (issue 13)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

POSTMAN = Path(__file__).resolve().parents[2] / "docker" / "postman"


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", POSTMAN / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_collection_is_what_build_collection_writes() -> None:
    built = _module("build_collection").collection()
    committed = json.loads((POSTMAN / "imaging-bridge.postman_collection.json").read_text())
    assert committed == built, "run python docker/postman/build_collection.py"
    assert committed["info"]["schema"].endswith("/v2.1.0/collection.json")


def test_every_variable_is_in_the_environment_or_set_by_the_collection() -> None:
    text = (POSTMAN / "imaging-bridge.postman_collection.json").read_text()
    collection = json.loads(text)
    used = set(re.findall(r"\{\{(\w+)\}\}", text))
    used |= set(re.findall(r"pm\.environment\.get\(\\?[\"'](\w+)", text))  # JSON-escaped
    own = {v["key"] for v in collection["variable"]}
    template = json.loads((POSTMAN / "imaging-bridge.postman_environment.json").read_text())
    env = {v["key"] for v in template["values"]}
    assert used - own - env == set()
    assert env - used == set(), "the template lists variables nobody uses"
    # the environment postman_env.prepare writes has the same keys as the template
    source = (POSTMAN / "postman_env.py").read_text()
    written = set(re.findall(r'"(\w+)": ', source[source.index("values = {"):]))
    assert env <= written
