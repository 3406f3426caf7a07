"""Why a migration does not start, or stops."""

from natscron_shared.contract.errors import BadRequestError, NatscronError


class MigrationSourceError(BadRequestError):
    """The source cannot be used: no database named, natscron's own, not a layout natscron
    reads, or not reachable."""


class MigrationInterruptedError(NatscronError):
    """A server failed part way; what was written is consistent, so rerun."""

    code = "unavailable"


class UnmappedKindsError(BadRequestError):
    """Schedules of a kind no scraper is mapped to: nothing was written."""

    def __init__(self, kinds: dict[str, int]) -> None:
        listed = ", ".join(
            f"{kind} ({count} schedule{'s' if count != 1 else ''})" for kind, count in kinds.items()
        )
        super().__init__(
            f"no scraper is mapped for {listed}; map each kind in a --scraper-map file (or run"
            " every kind with --scraper NAME), or leave them out with --skip-unmapped."
            " Nothing was written"
        )
        self.kinds = kinds
