"""natscron's shared code, by kind (docs/architecture.md, "Where code lives"):

- `contract`: what the services agree on: names, enums, models, messages, channels, job ids,
  errors, and the storage schema (MongoDB collections and their documents);
- `timing`: when schedules fire: cron, time zones, intervals, active hours; pure functions;
- `nats`: the NATS layer: connection, authentication, KV watches, JetStream checks,
  request/reply, and the KV operations several processes share;
- `runtime`: what every service runs on: lifecycle, health server, settings, clock.

Layers import downwards only: `timing` nothing of ours, `contract` timing, `runtime`
contract, `nats` any of them.
"""
