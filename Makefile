# Two entry points for a new user; both install what they need first (scripts/bootstrap.sh).
.PHONY: demo test lint bootstrap

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/fedmarket demo

# The static checks (layers, ruff, mypy) run before the tests: a broken layer fails fast.
lint: bootstrap
	.venv/bin/lint-imports
	.venv/bin/ruff check .
	.venv/bin/mypy

test: lint
	.venv/bin/python -m pytest
