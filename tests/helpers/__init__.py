"""What several test modules share: configs, runs, the command line, kernel comparisons, data files,
references, search settings and a SLURM cluster. Test modules import from here, never from each other."""
