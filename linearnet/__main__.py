"""``python -m linearnet`` runs the command line."""

from .cli.main import run

raise SystemExit(run())
