"""harness: a scaling-law study harness for neural operators on PDEs."""

__version__ = "0.1.0"
