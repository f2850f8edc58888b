"""Zero-knowledge round proofs: circuits, trusted setup, prover and verifiers."""
