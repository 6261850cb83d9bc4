"""Stream workers (workers.serving), the batch pipeline (workers.pipeline), the shared worker modules and the `pokewatch` command."""
