"""`python -m moestat` runs the command line."""

from moestat.cli import run

run()
