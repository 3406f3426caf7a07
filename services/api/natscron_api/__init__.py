"""The API: natscron's HTTP face over KV, `jobs.trigger`, `jobs.cancel` and MongoDB.

`core.ApiCore` holds the operations; `http_app` is the HTTP face over them (the NATS micro
face and the CLI are to call the same core).
"""

from natscron_api.service import ApiService

__all__ = ["ApiService"]
