"""Example applications for ``scripts/run-example.sh``."""
