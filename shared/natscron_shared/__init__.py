"""The contract between natscron's services: names, enums, models, messages, errors,
settings, clock and schedule maths; plus the runtime every service shares (its lifecycle,
health server, NATS connection and provisioning)."""
