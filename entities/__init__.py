"""Entities of the bundled samples: one `df.Blueprint` per module, all in `BLUEPRINTS`."""

from __future__ import annotations

from entities import inventory

BLUEPRINTS = (inventory.bp,)

__all__ = ["BLUEPRINTS"]
