"""The recorder: the only writer of MongoDB, fed by the EVENTS and ITEMS streams and KV."""

from natscron_recorder.service import RecorderService

__all__ = ["RecorderService"]
