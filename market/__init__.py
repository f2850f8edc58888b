"""fedmarket: a federated-learning marketplace on EVM chains (chain, storage, owner and trainer side, CLI)."""

__version__ = "0.1.0"
