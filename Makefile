# Two entry points for a new user; both install what they need first (scripts/bootstrap.sh).
.PHONY: demo test lint bootstrap

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/fedmarket demo

# The static checks (layers, ruff, mypy, slither on contracts/) run before the tests: a broken layer fails fast.
lint: bootstrap
	.venv/bin/lint-imports
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/python scripts/slither.py

# The dashboard's browser test needs Debian's chromium and chromium-driver (scripts/browser.sh installs them).
test: lint
	bash scripts/browser.sh
	.venv/bin/python -m pytest -n auto --dist loadfile --no-loadscope-reorder --durations=25
