"""Source ids kept as labels of a migrated schedule, so that they can select it
(`natscron pause --selector domain=example.com`)."""

from pydantic import TypeAdapter, ValidationError

from natscron.migration.definitions import ORIGIN_LABELS
from natscron_shared.contract.models import LabelValue

_LABEL_VALUE: TypeAdapter[str] = TypeAdapter(LabelValue)


def source_labels(values: dict[str, str | None], notes: list[str]) -> dict[str, str]:
    """`ORIGIN_LABELS` plus each value that can be a label value; a note for each other."""
    labels = dict(ORIGIN_LABELS)
    for name, value in values.items():
        if value is None:
            continue
        try:
            labels[name] = _LABEL_VALUE.validate_python(value)
        except ValidationError:
            notes.append(f"{name} {value!r} cannot be a label value: kept in the params only")
    return labels
