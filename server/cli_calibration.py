"""CLI commands for the calibration feature (filled in by its issue)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
