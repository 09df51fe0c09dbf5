"""The HTTP API's operations as plain Python (functions/http_api.py only adapts requests/responses)."""
