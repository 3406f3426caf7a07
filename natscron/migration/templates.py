"""Params templates of the scraper map: JSON values whose strings may name source fields.

- A string that is one placeholder, `"{locations}"`, becomes the field's value as it is (a
  list stays a list); a field the source left empty drops the key or the list item, so the
  scraper's default applies.
- A placeholder inside text, `"https://{domain}/"`, is replaced by the value as text; an
  empty field there is an error: there is no text to put.
- `{{` and `}}` are literal braces; mappings and lists are rendered item by item; other
  values are kept as they are.
"""

from collections.abc import Iterator, Mapping
from string import Formatter
from typing import Any


class TemplateError(ValueError):
    """A template that cannot be rendered; the message is a sentence."""


_OMIT = object()
_FORMATTER = Formatter()


def placeholders(template: object) -> Iterator[str]:
    """Every field a template names; `TemplateError` for a placeholder that is not a plain
    name (`{a.b}`, `{a!r}`, `{a:>5}`, `{}`) or for unbalanced braces."""
    if isinstance(template, str):
        for _, name, _, _ in _parsed(template):
            if name is not None:
                yield name
    elif isinstance(template, Mapping):
        for value in template.values():
            yield from placeholders(value)
    elif isinstance(template, list):
        for value in template:
            yield from placeholders(value)


def render(template: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """The params: `template` with every placeholder replaced from `fields`."""
    rendered = _render(template, fields)
    assert isinstance(rendered, dict)
    return rendered


def _render(template: object, fields: Mapping[str, Any]) -> object:
    if isinstance(template, str):
        return _render_text(template, fields)
    if isinstance(template, Mapping):
        items = ((key, _render(value, fields)) for key, value in template.items())
        return {key: value for key, value in items if value is not _OMIT}
    if isinstance(template, list):
        values = (_render(value, fields) for value in template)
        return [value for value in values if value is not _OMIT]
    return template


def _render_text(template: str, fields: Mapping[str, Any]) -> object:
    parts = _parsed(template)
    if len(parts) == 1 and parts[0][0] == "" and parts[0][1] is not None:
        value = fields.get(parts[0][1])
        return _OMIT if value is None else value
    text = []
    for literal, name, _, _ in parts:
        text.append(literal)
        if name is None:
            continue
        value = fields.get(name)
        if value is None:
            raise TemplateError(f"{template!r} needs {name}, which this record has not")
        text.append(str(value))
    return "".join(text)


def _parsed(template: str) -> list[tuple[str, str | None, str | None, str | None]]:
    try:
        parts = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise TemplateError(f"{template!r}: {exc}") from None
    for _, name, spec, conversion in parts:
        if name is not None and (not name.isidentifier() or spec or conversion):
            raise TemplateError(
                f"{template!r}: a placeholder is a field name in braces, as {{domain}}"
            )
    return parts
