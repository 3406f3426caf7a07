"""Deployment code run by hand or as a one-shot step: `natscron provision` and the NATS
permissions every process gets."""
