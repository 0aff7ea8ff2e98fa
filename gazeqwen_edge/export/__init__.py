"""Deployment: what the runtime needs on an edge device (memory plan) and how its parts are exported."""
