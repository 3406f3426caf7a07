"""The NATS layer every process shares: one connection, its authentication, KV watches,
JetStream checks, request/reply, and KV operations used by more than one process."""
