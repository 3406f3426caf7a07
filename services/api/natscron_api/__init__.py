"""The API: natscron's HTTP face and NATS face (`natscron.api.*`) over KV, `jobs.trigger`,
`jobs.cancel` and MongoDB.

`operations.Operations` holds what the API does, in parts by what they touch (`queries`:
MongoDB; `specs`: KV `scheduled_jobs`; `commands`: requests to the services; `status`: the
scheduler as a whole); `http_app` and `micro` are the two faces over them; `requests` and
`views` the models a client needs (the CLI imports only those, so
`ApiService` and its web stack load on first use).
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from natscron_api.service import ApiService

__all__ = ["ApiService"]


def __getattr__(name: str) -> object:
    if name == "ApiService":
        from natscron_api.service import ApiService

        return ApiService
    raise AttributeError(f"module 'natscron_api' has no attribute {name!r}")
