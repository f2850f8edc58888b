"""Shared pytest fixtures; each service's fixtures live in their own plugin module."""

pytest_plugins = ["tests.fixtures_chain", "tests.fixtures_ipfs", "tests.fixtures_zk"]
