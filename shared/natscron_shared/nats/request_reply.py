"""Request/reply, one way for every process that answers requests: NATS micro services.

The ticker (`jobs.trigger`, `jobs.backfill`, `natscron.ticker.status`, its presence), the
runner (`jobs.cancel`) and the API (`natscron.api.*`) each serve their endpoints as a NATS
micro service (ADR-32), so operators find them with `nats micro ls`, `nats micro info
natscron-ticker` and `nats micro stats natscron-runner` (`$SRV.PING|INFO|STATS`), and
every endpoint decodes, bounds, answers and fails alike:

- a body over the endpoint's `max_bytes` is refused before it is parsed
  (`message_too_large`); an empty body means `{}`; a body that is not JSON is
  `malformed_json`, one its request model refuses `invalid_request`, naming the fields;
- a success is the reply model as JSON;
- a failure is the micro error headers (`Nats-Service-Error-Code`: the HTTP status of the
  code, `Nats-Service-Error`: the sentence) and the body `{"error": {"code", "message"}}`
  (`ErrorReply`): a `NatscronError` answers with its own code; a transient NATS error
  (or another the service declares) as `unavailable`; anything else is logged with its
  traceback and answered `internal_error`;
- every request is counted in `natscron_requests_total{endpoint, outcome}` (`ok` or the
  error code).

A request without a reply subject (a fire-and-forget trigger) is handled all the same.
Requests to one endpoint are answered one at a time, in order, as nats-py delivers them.
`stop` is graceful: requests that arrive from then on are answered `unavailable` (another
instance may answer a retry), those being answered finish (within the grace), then the
subscriptions end.

`request` is the asking side: it sends a model and returns the reply model, or raises
`RemoteError` with the answering service's code and sentence.
"""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import nats.errors
from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.request import ERROR_CODE_HEADER, ERROR_HEADER, Request
from nats.micro.service import Service
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ValidationError

from natscron_shared.contract.errors import (
    CodedError,
    MalformedJsonError,
    MessageTooLargeError,
    NatscronError,
    UnavailableError,
    invalid_request,
    status_of,
)
from natscron_shared.contract.messages import ErrorReply
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
"""A request names a job or a schedule and a few fields; anything bigger is a mistake."""
REQUEST_TIMEOUT_SECONDS = 10.0
SERVICE_VERSION = "0.1.0"
RequestT = TypeVar("RequestT", bound=BaseModel)
ReplyT = TypeVar("ReplyT", bound=BaseModel)


@dataclass(frozen=True)
class Endpoint(Generic[RequestT]):
    """One subject a service answers: its request model and what answers it."""

    subject: str
    request: type[RequestT]
    answer: Callable[[RequestT], Awaitable[BaseModel]]
    description: str
    max_bytes: int = MAX_REQUEST_BYTES
    queue_group: str | None = None
    """Who shares the requests: None = the service's group (one instance answers each);
    an instance's own group makes every instance answer."""
    name: str = ""
    """The micro endpoint name; by default the subject, dots as dashes."""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.subject.replace(".", "-"))


@dataclass(frozen=True)
class Backend:
    """A server behind the answers: its errors mean "unavailable, retry later"."""

    name: str
    errors: tuple[type[BaseException], ...]


class MicroService:
    """`endpoints` served on one NATS connection as the micro service `name`."""

    def __init__(
        self,
        name: str,
        description: str,
        endpoints: Sequence[Endpoint[Any]],
        registry: CollectorRegistry,
        *,
        queue_group: str | None = None,
        unavailable: Sequence[Backend] = (Backend("NATS", TRANSIENT_NATS_ERRORS),),
    ) -> None:
        self._name = name
        self._description = description
        self._endpoints = tuple(endpoints)
        self._queue_group = queue_group
        self._unavailable = unavailable
        self._service: Service | None = None
        self._stopping = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.requests = Counter(
            "natscron_requests_total",
            "Requests answered, by endpoint (subject) and outcome (ok or the error code)",
            ["endpoint", "outcome"],
            registry=registry,
        )

    async def start(self, client: Client) -> None:
        self._service = await add_service(
            client,
            name=self._name,
            version=SERVICE_VERSION,
            description=self._description,
            queue_group=self._queue_group,
        )
        for endpoint in self._endpoints:
            await self._service.add_endpoint(
                name=endpoint.name,
                subject=endpoint.subject,
                handler=self._handler(endpoint),
                queue_group=endpoint.queue_group,
                metadata={"description": endpoint.description},
            )
        await client.flush()

    async def stop(self, grace_seconds: float = REQUEST_TIMEOUT_SECONDS) -> None:
        """Stop answering, after the requests being answered (up to `grace_seconds`);
        idempotent."""
        self._stopping = True
        try:
            await asyncio.wait_for(self._idle.wait(), grace_seconds)
        except TimeoutError:
            log.warning("%s stops with %d requests unanswered", self._name, self._in_flight)
        service, self._service = self._service, None
        if service is not None:
            try:
                await service.stop()
            except nats.errors.Error as exc:
                log.warning("could not stop the %s micro service cleanly: %s", self._name, exc)

    def _handler(self, endpoint: Endpoint[Any]) -> Callable[[Request], Awaitable[None]]:
        async def handle(request: Request) -> None:
            self._in_flight += 1
            self._idle.clear()
            try:
                await self._handle(endpoint, request)
            finally:
                self._in_flight -= 1
                if not self._in_flight:
                    self._idle.set()

        return handle

    async def _handle(self, endpoint: Endpoint[Any], request: Request) -> None:
        try:
            if self._stopping:
                raise UnavailableError(f"{self._name} is stopping; retry")
            reply = await self._answer(endpoint, request.data)
        except NatscronError as exc:
            self.requests.labels(endpoint.subject, exc.code).inc()
            log.info("refused a request on %s: %s", endpoint.subject, exc.detail)
            await _respond(request, _error_body(exc), exc)
            return
        self.requests.labels(endpoint.subject, "ok").inc()
        await _respond(request, reply)

    async def _answer(self, endpoint: Endpoint[Any], data: bytes) -> bytes:
        if len(data) > endpoint.max_bytes:
            raise MessageTooLargeError(f"request of {len(data)} bytes is over {endpoint.max_bytes}")
        try:
            parsed = endpoint.request.model_validate(_json(data))
        except ValidationError as exc:
            raise invalid_request(exc) from None
        try:
            reply = await endpoint.answer(parsed)
        except NatscronError:
            raise
        except Exception as exc:
            backend = next((b for b in self._unavailable if isinstance(exc, b.errors)), None)
            if backend is not None:
                log.warning("%s: %s unavailable: %r", endpoint.subject, backend.name, exc)
                raise UnavailableError(f"{backend.name} is unavailable; retry later") from None
            log.exception("a request on %s failed unexpectedly", endpoint.subject)
            raise NatscronError(
                f"internal error ({type(exc).__name__}); see the {self._name} log"
            ) from None
        return reply.model_dump_json().encode()


def _json(data: bytes) -> Any:
    if not data.strip():
        return {}
    try:
        return json.loads(data)
    except ValueError:
        raise MalformedJsonError("the request body is not valid JSON") from None


def _error_body(error: NatscronError) -> bytes:
    return ErrorReply.of(error.code, error.detail).model_dump_json().encode()


async def _respond(request: Request, body: bytes, error: NatscronError | None = None) -> None:
    """Answer, unless the request has no reply subject (micro's `respond` then raises
    ValueError): a fire-and-forget request is handled, and nobody waits for its answer."""
    try:
        if error is None:
            await request.respond(body)
        else:
            await request.respond_error(str(status_of(error.code)), error.detail, data=body)
    except ValueError:
        return
    except nats.errors.Error as exc:
        log.warning("could not answer a request on %s: %s", request.subject, exc)


class RemoteError(CodedError):
    """An error reply: the answering service's own code and sentence."""


async def request(
    client: Client,
    subject: str,
    payload: BaseModel,
    reply: type[ReplyT],
    *,
    who: str,
    within: float = REQUEST_TIMEOUT_SECONDS,
) -> ReplyT:
    """Ask `subject` and return its answer as `reply`. `who` names the answerer in the
    errors: `unavailable` when none answers or NATS is down, `remote_error` when the answer
    is not a reply, and the answerer's own code for an error reply."""
    try:
        message = await client.request(
            subject, payload.model_dump_json(exclude_none=True).encode(), timeout=within
        )
    except nats.errors.NoRespondersError:
        raise UnavailableError(f"no {who} answered on {subject}; is one running?") from None
    except (TimeoutError, nats.errors.TimeoutError):
        raise UnavailableError(f"no {who} answered on {subject} within {within:g}s") from None
    except TRANSIENT_NATS_ERRORS as exc:
        raise UnavailableError(f"NATS is unavailable ({type(exc).__name__})") from None
    error = _error_of(message.headers, message.data)
    if error is not None:
        code, sentence = error
        if code == "internal_error":
            raise RemoteError("remote_error", f"the {who} failed: {sentence}")
        raise RemoteError(code, sentence)
    try:
        return reply.model_validate_json(message.data)
    except ValidationError:
        raise RemoteError(
            "remote_error", f"the {who}'s answer on {subject} is not a {reply.__name__}"
        ) from None


def _error_of(headers: Mapping[str, str] | None, data: bytes) -> tuple[str, str] | None:
    """(code, sentence) of an error reply, None for any other answer."""
    if not headers or ERROR_CODE_HEADER not in headers:
        return None
    try:
        body = ErrorReply.model_validate_json(data)
    except ValidationError:
        return "remote_error", headers.get(ERROR_HEADER, "an error without a body")
    return body.error.code, body.error.message
