"""Wiring of streamlearn: the Faust worker, the CLI, web views and embedded infrastructure."""
