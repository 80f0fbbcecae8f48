"""Shim for eval/calibrate.py until it imports rag.evaluation (the lead removes this file)."""

from .evaluation.qa_sets import load_qa, load_squad_set

__all__ = ["load_qa", "load_squad_set"]
