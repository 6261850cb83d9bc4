"""The serving side: the stream-worker runtime, model and decision workers, hot reload, the served catalog."""
