"""What NATS holds now, as the API reads it: KV buckets, the lag of consumers, the scraper
catalogue, the jobs runners run. A bucket or consumer that does not exist is
`not_provisioned`."""

from datetime import datetime

from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo
from nats.js.errors import BucketNotFoundError, KeyDeletedError, KeyNotFoundError, NotFoundError
from nats.js.kv import KV_DEL, KV_OP, KV_PURGE, KeyValue
from pydantic import ValidationError

from natscron_api.errors import ApiError
from natscron_api.views import ConsumerLag
from natscron_shared.contract import names
from natscron_shared.contract.catalogue import Catalogue
from natscron_shared.contract.claims import JobClaim
from natscron_shared.nats.jetstream_layout import kv_stream_name
from natscron_shared.nats.kv_watch import current_values
from natscron_shared.nats.scrapers_bucket import load_catalogue

JOB_CLAIM_PREFIX = names.running_job_key("")


class LiveState:
    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._buckets: dict[str, KeyValue] = {}

    async def bucket(self, name: str) -> KeyValue:
        if name not in self._buckets:
            try:
                self._buckets[name] = await self._js.key_value(name)
            except BucketNotFoundError:
                raise not_provisioned(name) from None
        return self._buckets[name]

    async def get(self, bucket_name: str, key: str) -> bytes | None:
        """The key's value; None if it has none (never put, deleted or purged)."""
        try:
            entry = await (await self.bucket(bucket_name)).get(key)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        return entry.value

    async def entry(self, bucket_name: str, key: str) -> tuple[bytes, int] | None:
        """The key's value and its revision; None if it has none."""
        try:
            entry = await (await self.bucket(bucket_name)).get(key)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        return entry.value or b"", entry.revision or 0

    async def stored_at(self, bucket_name: str, key: str) -> datetime | None:
        """When the bucket stored the key's current value; None if it has none."""
        try:
            message = await self._js.get_last_msg(
                kv_stream_name(bucket_name), f"$KV.{bucket_name}.{key}"
            )
        except NotFoundError:
            return None
        if (message.headers or {}).get(KV_OP) in (KV_DEL, KV_PURGE):
            return None
        return message.time

    async def keys(self, bucket_name: str) -> list[str]:
        return list(await current_values(await self.bucket(bucket_name)))

    async def running_jobs(self) -> list[JobClaim]:
        """The jobs runners hold a claim on now (KV `running`, `job.<job_id>`); a value that
        is no claim is left out."""
        values = await current_values(await self.bucket(names.KV_RUNNING))
        claims = []
        for key, value in values.items():
            if not key.startswith(JOB_CLAIM_PREFIX):
                continue
            try:
                claims.append(JobClaim.model_validate_json(value))
            except ValidationError:
                continue
        return claims

    async def catalogue(self) -> Catalogue:
        try:
            return await load_catalogue(self._js)
        except BucketNotFoundError:
            raise not_provisioned(names.KV_SCRAPERS) from None

    async def runner_lanes(self) -> list[ConsumerLag]:
        """Every consumer of stream JOBS (the lanes of every runner pool provisioned), by
        name: the API needs no list of pools."""
        try:
            infos = await self._js.consumers_info(names.STREAM_JOBS)
        except NotFoundError:
            raise ApiError(
                "not_provisioned",
                f"stream {names.STREAM_JOBS} does not exist; run `natscron provision`",
            ) from None
        return sorted(
            (_lag_of(names.STREAM_JOBS, info) for info in infos), key=lambda lag: lag.consumer
        )

    async def lag(self, stream: str, consumer: str) -> ConsumerLag:
        try:
            info = await self._js.consumer_info(stream, consumer)
        except NotFoundError:
            raise ApiError(
                "not_provisioned",
                f"consumer {stream}/{consumer} does not exist; run `natscron provision`",
            ) from None
        return _lag_of(stream, info)


def _lag_of(stream: str, info: ConsumerInfo) -> ConsumerLag:
    return ConsumerLag(
        consumer=info.name,
        stream=stream,
        pending=info.num_pending or 0,
        ack_pending=info.num_ack_pending or 0,
        redelivered=info.num_redelivered or 0,
        waiting_pulls=info.num_waiting or 0,
    )


def not_provisioned(bucket: str) -> ApiError:
    return ApiError(
        "not_provisioned", f"KV bucket {bucket} does not exist; run `natscron provision`"
    )
