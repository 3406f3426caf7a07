"""Rules between fields that a model's validators check, written into its JSON schema too
(`json_schema_extra`), so the OpenAPI document says what the API accepts and clients
generated from it send what passes."""

from collections.abc import Callable, Sequence
from typing import Any

JsonSchema = dict[str, Any]


def given(name: str) -> JsonSchema:
    """The field is present and not null (a null counts as left out, as in the models)."""
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


Rule = Callable[[JsonSchema], None]


def exactly_one_of(*names: str) -> Rule:
    """Exactly one of the fields is given."""

    def add(schema: JsonSchema) -> None:
        schema["oneOf"] = [given(name) for name in names]

    return add


def exactly_one_of_or_instead(names: Sequence[str], instead: str) -> Rule:
    """Exactly one of the fields `names` is given, or none of them and the list `instead`
    has an item (a chain's child: its runs come after others' instead of at times of its own)."""

    def add(schema: JsonSchema) -> None:
        none_given = {name: {"type": "null"} for name in names}
        schema["oneOf"] = [given(name) for name in names] + [
            {"required": [instead], "properties": {instead: {"minItems": 1}, **none_given}}
        ]

    return add


def only_with(names: Sequence[str], field: str, value: str) -> Rule:
    """The fields `names` may be given only when `field` is `value`."""

    def add(schema: JsonSchema) -> None:
        schema.setdefault("allOf", []).append(
            {
                "if": {"anyOf": [given(name) for name in names]},
                "then": {"required": [field], "properties": {field: {"const": value}}},
            }
        )

    return add


def positive(*names: str) -> Rule:
    """At least one of the numbers is above zero."""

    def add(schema: JsonSchema) -> None:
        schema["anyOf"] = [
            {"required": [name], "properties": {name: {"exclusiveMinimum": 0}}} for name in names
        ]

    return add


def rules(*each: Rule) -> Rule:
    def add(schema: JsonSchema) -> None:
        for rule in each:
            rule(schema)

    return add
