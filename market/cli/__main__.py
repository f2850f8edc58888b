"""`python -m market.cli`: the same as the `fedmarket` command."""

from market.cli import app

app()
