"""docker-compose.yml validates against the Compose Specification JSON schema, offline
(the schema is vendored in tests/deploy/schemas; see its README for where it came from)."""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).resolve().parent / "schemas" / "compose-spec.json"


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return schema


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose


def _errors(compose: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(
        _schema(), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(compose)
    ]


def test_docker_compose_matches_the_compose_specification() -> None:
    assert _schema()["title"] == "Compose Specification"
    assert _errors(_compose()) == []


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda c: c["services"]["ticker"].update(restat="always"), "'restat' does not match"),
        (lambda c: c["services"]["api"].update(ports="8000:8000"), "is not of type 'array'"),
        (lambda c: c.update(servics={}), "'servics' does not match"),
    ],
    ids=["unknown service key", "ports not a list", "unknown top-level key"],
)
def test_the_schema_rejects_a_broken_compose_file(
    change: Callable[[dict[str, Any]], object], complaint: str
) -> None:
    broken = copy.deepcopy(_compose())
    change(broken)
    errors = _errors(broken)
    assert any(complaint in error for error in errors), errors
