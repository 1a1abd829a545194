"""Durable workflows for Python Azure Functions on plain Azure Storage."""

from __future__ import annotations
