"""The REST gateway: the edge every REST client talks to (see gateway.main)."""
