"""Shim for eval/train_reader.py until it imports rag.evaluation.squad (the lead removes this file)."""

from .evaluation.squad import load_squad, split_articles

__all__ = ["load_squad", "split_articles"]
