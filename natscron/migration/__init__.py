"""Moving the legacy app's recurring jobs, and their runs, into natscron (docs/migration.md)."""
