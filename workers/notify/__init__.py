"""Watchlist alerts: matching events to watchlists, delivering webhooks (workers.notify.worker)."""
