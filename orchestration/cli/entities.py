"""The CLI's entity commands' arguments: `entity get NAME KEY`, `entity signal NAME KEY OP
[--input]`, `entity list [NAME]` (run by `commands.entity`, straight against storage)."""

from __future__ import annotations

import argparse


def add_parsers(entity: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    commands = entity.add_subparsers(dest="entity_command", required=True)
    get = commands.add_parser("get", help="an entity's state", parents=[common])
    get.add_argument("name", help="entity name")
    get.add_argument("key", help="entity key")
    signal = commands.add_parser("signal", help="signal an entity's operation", parents=[common])
    signal.add_argument("name", help="entity name")
    signal.add_argument("key", help="entity key")
    signal.add_argument("operation", help="operation name")
    signal.add_argument("--input", help="input as JSON, or @file (@- for stdin)")
    listing = commands.add_parser("list", help="list entities", parents=[common])
    listing.add_argument("name", nargs="?", help="only entities of this name")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    listing.add_argument("--state", action="store_true", help="show each entity's state")
