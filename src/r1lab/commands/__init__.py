"""CLI commands, one module each (see r1lab.cli)."""
