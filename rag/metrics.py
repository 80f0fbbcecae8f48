"""Shim for eval/calibrate.py until it imports rag.evaluation.metrics (the lead removes this file)."""

from .evaluation.metrics import answer_metrics

__all__ = ["answer_metrics"]
