"""`python -m ingest.cli`: how `dev` starts its children with the same interpreter."""

from ingest.cli import main

main()
