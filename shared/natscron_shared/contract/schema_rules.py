"""Rules between fields that a model's validators check, written into its JSON schema too
(`json_schema_extra`), so the OpenAPI document says what the API accepts and clients
generated from it send what passes."""

from collections.abc import Callable
from typing import Any

JsonSchema = dict[str, Any]


def given(name: str) -> JsonSchema:
    """The field is present and not null (a null counts as left out, as in the models)."""
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def exactly_one_of(*names: str) -> Callable[[JsonSchema], None]:
    """Exactly one of the fields is given."""

    def add(schema: JsonSchema) -> None:
        schema["oneOf"] = [given(name) for name in names]

    return add
