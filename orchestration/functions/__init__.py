"""The engine's Azure Functions: DFApp, its triggers, workers and HTTP API."""

from __future__ import annotations
