"""`python -m workers.cli ...`: how the local stack starts its worker processes."""

from workers.cli.main import app

app()
