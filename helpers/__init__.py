"""Shared code for the course notebooks. Importing it does nothing else."""
__version__ = "0.1.0"
