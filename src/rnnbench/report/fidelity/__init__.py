"""The fidelity table: every claim of the papers we reproduce, beside ours (``table``): claims declared
as data (``claims``), read from reproduction folders (``folder``), measured from their searches
(``searches``) and runs (``runs``) with shared helpers (``measure``)."""

from rnnbench.report.fidelity.claims import CLAIMS
from rnnbench.report.fidelity.table import as_frame, fidelity_rows, write_fidelity

__all__ = ["CLAIMS", "as_frame", "fidelity_rows", "write_fidelity"]
