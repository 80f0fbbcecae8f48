"""Evaluation: Q&A sets and their loaders (``qa_sets``, ``squad``), metrics (``metrics``),
scoring (``scoring``), reports and charts (``report``), terminal tables (``tables``) and the
run that ties them to a ``Pipeline`` (``run``). ``rag eval`` is the command; see eval/README.md."""

from .qa_sets import QAItem, load_qa, load_squad_set, parse_qa_lines
from .report import report_paths, write_outputs
from .run import REPORT_KEYS, run_eval, run_eval_many
from .scoring import QuestionResult, compare_reports, score_answer, score_results

__all__ = [
    "QAItem", "QuestionResult", "REPORT_KEYS", "compare_reports", "load_qa", "load_squad_set", "parse_qa_lines",
    "report_paths", "run_eval", "run_eval_many", "score_answer", "score_results", "write_outputs",
]
