"""``python -m dbproc`` runs the CLI."""

from dbproc.cli import main

main()
