"""The scraper catalogue: which scrapers the live runners can run, in which runner pool, and
the JSON schema of each one's params, so a job is checked where it is written, not when it
runs.

Every runner puts one `ScraperEntry` per scraper it has in KV `scrapers` (key:
`<pool>.<scraper>`) at start and every third of the bucket's TTL. Runners of one pool with
the same scrapers overwrite each other; an entry no live runner renews expires with the TTL,
so the bucket holds what the runners up now advertise, and nothing when none is up.

`natscron apply` and `jobs.trigger` read it (`natscron_shared.nats.scrapers_bucket`) and
refuse a job whose scraper no pool offers (or not the pool the job names) or whose params
its schema rejects (`check_job`), which also says the pool the job runs in (`pool_for`).
This module imports no runner code: a schema is plain JSON, checked with `jsonschema`.
"""

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from jsonschema.exceptions import ValidationError as SchemaValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from natscron_shared.contract import names
from natscron_shared.contract.errors import BadRequestError, NatscronError
from natscron_shared.contract.models import Identifier
from natscron_shared.contract.pools import DEFAULT_POOL, PoolName
from natscron_shared.contract.suggestions import did_you_mean

log = logging.getLogger(__name__)

OPEN_PARAMS_SCHEMA: dict[str, Any] = {"type": "object"}
"""The schema of a scraper that declares none: any JSON object."""
ERROR_MESSAGE_KEYWORD = "errorMessage"
"""A schema may say, as ajv-errors does, how its own failure reads: `"errorMessage": "is not
an http(s) URL"` turns `'htp://x' does not match '^...'` into `'htp://x' is not an http(s)
URL`. Validators ignore unknown keywords, so the schema stays standard."""
MAX_LISTED_PROBLEMS = 5


class ScraperEntry(BaseModel):
    """The value under key `<pool>.<scraper>` in KV `scrapers`, put by the runner of that pool
    that advertised it last."""

    model_config = ConfigDict(frozen=True)

    scraper: Identifier
    pool: PoolName = Field(default=DEFAULT_POOL, description="the pool of the runners")
    description: str = ""
    params_schema: dict[str, Any] = Field(
        default_factory=lambda: dict(OPEN_PARAMS_SCHEMA),
        description="JSON schema (2020-12) of the scraper's params",
    )
    runner_id: str = Field(description="the runner that advertised this entry last")
    advertised_at: AwareDatetime


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a job: the field (`scraper`, `params`, `params.urls[0]`) and why."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class JobRejectedError(BadRequestError):
    """A job the catalogue refuses; `problems` name each field."""

    code = "invalid_job"

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = tuple(problems)


class ScraperNotAdvertisedError(JobRejectedError):
    code = "unknown_scraper"


class ParamsRejectedError(JobRejectedError):
    code = "invalid_params"


class NoRunnersError(NatscronError):
    """No live runner advertises anything, so nothing can be checked."""

    code = "no_runners"


def no_runners_message(how_to_skip: str) -> str:
    return (
        f"no runner is advertising scrapers (KV {names.KV_SCRAPERS} holds none renewed in the"
        " last TTL), so the scraper and params cannot be checked; start a runner, or"
        f" {how_to_skip} to accept them unchecked"
    )


def schema_validator(schema: Mapping[str, Any]) -> Validator:
    """A validator for `schema` (its `$schema`, or 2020-12); `SchemaError` if it is not one."""
    cls = validator_for(schema, default=Draft202012Validator)
    cls.check_schema(dict(schema))
    return cls(dict(schema))


class Catalogue:
    """What the live runners advertise, by pool and scraper name; false when nothing is."""

    def __init__(self, entries: Iterable[ScraperEntry] = ()) -> None:
        self._entries: dict[tuple[str, str], ScraperEntry] = {}
        self._validators: dict[tuple[str, str], Validator] = {}
        for entry in entries:
            try:
                validator = schema_validator(entry.params_schema)
            except SchemaError as exc:
                log.warning(
                    "ignoring scraper %r of pool %r advertised by %s: its params schema is"
                    " invalid: %s",
                    entry.scraper,
                    entry.pool,
                    entry.runner_id,
                    exc.message,
                )
                continue
            self._entries[entry.pool, entry.scraper] = entry
            self._validators[entry.pool, entry.scraper] = validator

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __contains__(self, scraper: object) -> bool:
        """Whether some pool offers `scraper`."""
        return any(name == scraper for _, name in self._entries)

    def entries(self) -> list[ScraperEntry]:
        return [self._entries[key] for key in sorted(self._entries)]

    def entry(self, pool: str, scraper: str) -> ScraperEntry:
        """`KeyError` if no runner of `pool` advertises `scraper`."""
        return self._entries[pool, scraper]

    def names(self) -> list[str]:
        """Every scraper some pool offers."""
        return sorted({name for _, name in self._entries})

    def pools(self) -> list[str]:
        """Every pool with a live runner."""
        return sorted({pool for pool, _ in self._entries})

    def pools_offering(self, scraper: str) -> list[str]:
        return sorted(pool for pool, name in self._entries if name == scraper)

    def offered_in(self, pool: str) -> list[str]:
        return sorted(name for offering, name in self._entries if offering == pool)

    def pool_for(self, scraper: str, pool: str | None = None) -> str:
        """The pool a job of `scraper` runs in: `pool` if its runners offer the scraper; left
        out, the default pool if it offers it, else the one pool that does. Raises
        `ScraperNotAdvertisedError` naming the pool it looked for (or every pool up)."""
        offering = self.pools_offering(scraper)
        if pool is not None:
            if pool in offering:
                return pool
            raise ScraperNotAdvertisedError([Problem("pool", self._not_in(scraper, pool))])
        if DEFAULT_POOL in offering:
            return DEFAULT_POOL
        if len(offering) == 1:
            return offering[0]
        if offering:
            raise ScraperNotAdvertisedError(
                [
                    Problem(
                        "pool",
                        f"scraper {scraper!r} is offered by pools {', '.join(offering)}, none"
                        " of them the default: name the one to run it in",
                    )
                ]
            )
        known = self.names()
        message = f"unknown scraper {scraper!r}; known: {', '.join(known)}"
        pools = self.pools()
        looked = "" if pools == [DEFAULT_POOL] else f" (in pools {', '.join(pools)})"
        raise ScraperNotAdvertisedError(
            [Problem("scraper", message + looked + did_you_mean(scraper, known))]
        )

    def _not_in(self, scraper: str, pool: str) -> str:
        offered = self.offered_in(pool)
        if not offered:
            return (
                f"no runner of pool {pool!r} is up to run scraper {scraper!r} (pools up:"
                f" {', '.join(self.pools())})"
            )
        elsewhere = self.pools_offering(scraper)
        return (
            f"pool {pool!r} does not offer scraper {scraper!r} (it offers:"
            f" {', '.join(offered)})"
            + (f"; pools offering it: {', '.join(elsewhere)}" if elsewhere else "")
            + did_you_mean(scraper, offered)
        )

    def problems(self, scraper: str, params: Mapping[str, Any], pool: str) -> list[Problem]:
        """What the schema of `scraper` in `pool` finds wrong with `params` (empty: nothing)."""
        validator = self._validators[pool, scraper]
        found: list[Problem] = []
        for error in sorted(validator.iter_errors(params), key=lambda e: list(map(str, e.path))):
            for problem in _problems_of(best_match([error])):
                if problem not in found:
                    found.append(problem)
        return found


def check_job(
    catalogue: Catalogue, scraper: str, params: Mapping[str, Any], pool: str | None = None
) -> str:
    """The pool the job runs in (`Catalogue.pool_for`), once a live runner of it advertises
    `scraper` and its schema accepts `params`; raise otherwise.

    `NoRunnersError` when the catalogue is empty; `ScraperNotAdvertisedError` (code
    `unknown_scraper`) or `ParamsRejectedError` (code `invalid_params`) naming the field.
    """
    if not catalogue:
        raise NoRunnersError(no_runners_message("skip the check"))
    chosen = catalogue.pool_for(scraper, pool)
    problems = catalogue.problems(scraper, params, chosen)
    if problems:
        shown = problems[:MAX_LISTED_PROBLEMS]
        if len(problems) > len(shown):
            shown.append(Problem("params", f"and {len(problems) - len(shown)} more problems"))
        raise ParamsRejectedError(shown)
    return chosen


def _field(path: Iterable[object]) -> str:
    return "params" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


def _problems_of(error: SchemaValidationError) -> list[Problem]:
    """jsonschema's error as problems naming the field itself: a missing or unknown key is
    reported on that key, not on the object holding it."""
    field = _field(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    instance = error.instance
    if error.validator == "additionalProperties" and isinstance(instance, Mapping):
        known = sorted(schema.get("properties", {}))
        extras = [key for key in instance if key not in known]
        return [
            Problem(
                f"{field}.{key}",
                "unknown field"
                + (f"; known: {', '.join(known)}" if known else "")
                + did_you_mean(str(key), known),
            )
            for key in extras
        ] or [Problem(field, error.message)]
    if error.validator == "required" and isinstance(instance, Mapping):
        required = error.validator_value if isinstance(error.validator_value, list) else []
        missing = [key for key in required if key not in instance]
        return [Problem(f"{field}.{key}", "required") for key in missing] or [
            Problem(field, error.message)
        ]
    branch_types = [
        e.validator_value
        for e in error.context or ()
        if e.validator == "type" and not e.relative_path
    ]
    if error.validator in ("anyOf", "oneOf") and len(branch_types) == len(error.context or ()):
        wanted = " or ".join(repr(t) for t in branch_types)
        return [Problem(field, f"{instance!r} is not of type {wanted}")]
    own_message = schema.get(ERROR_MESSAGE_KEYWORD)
    if isinstance(own_message, str):
        return [Problem(field, f"{instance!r} {own_message}")]
    return [Problem(field, error.message)]
