"""Operators' views: the metrics exporter (workers.monitoring.exporter) and `pokewatch top`."""
