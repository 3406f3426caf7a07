"""The `natscron` command line."""
