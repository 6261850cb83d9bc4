"""Stream workers (workers.serving), the batch pipeline (workers.pipeline), their shared modules, the CLI."""
