"""Reports of searches: the papers' tables and figures, generated from run files and Optuna studies.

``python -m rnnbench.report INPUT... --out FOLDER`` (see ``__main__``); from Python,
``make_report(inputs, out)``. Files: ``load`` (inputs -> one table of trials), ``units`` (the number
shown per task), ``stats`` (selection by validation, Welch's test), ``tables``, ``importance``
(fANOVA), ``figures``, ``paper_results`` (published numbers), ``document`` and ``render`` (Markdown,
HTML), ``build``. Reading never imports the trainer.
"""

from rnnbench.report.build import make_report

__all__ = ["make_report"]
