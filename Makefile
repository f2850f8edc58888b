# Two entry points for a new user; both install what they need first (scripts/bootstrap.sh).
.PHONY: demo test bootstrap

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/fedmarket demo

test: bootstrap
	.venv/bin/python -m pytest
