"""Shared pieces of the lite backends: network definitions, the diagnosis encoding, weight files."""
