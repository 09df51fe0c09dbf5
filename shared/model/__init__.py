"""Typed vocabulary shared by the store, the engine and the API."""
