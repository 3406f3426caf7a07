"""The contract between natscron's processes: NATS names, enums, the scheduled-job spec,
the messages on the wire, job ids, errors and the storage schema."""
