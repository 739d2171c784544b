"""python -m rnnbench.data download|verify|list: the data files (see ``rnnbench.data``)."""

from rnnbench.data import main

main()
