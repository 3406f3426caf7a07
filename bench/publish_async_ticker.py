"""`natscron ticker` publishing through nats-py's public `js.publish_async`: the ticker
with `PublishAsyncPublisher` where it builds its `BulkPublisher`, for bench/lateness.py.

Run as `python -m bench.publish_async_ticker`, with the settings `natscron ticker` takes.
The ticker logs `publish_async_publisher.STARTED` when the replacement took: the benchmark
checks for it, so a change in how the ticker builds its publisher cannot go unnoticed.
"""

from bench.publish_async_publisher import PublishAsyncPublisher
from natscron.cli.main import app
from natscron_ticker import service


def main() -> None:
    service.BulkPublisher = PublishAsyncPublisher  # type: ignore[attr-defined]
    app(["ticker"])


if __name__ == "__main__":
    main()
