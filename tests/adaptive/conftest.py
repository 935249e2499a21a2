"""Registers the simulation fixtures, which live in simkit.py so tests can import its helpers."""

from simkit import sim, sim_store  # noqa: F401
