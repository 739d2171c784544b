"""What a config may say: every key, its type and range (``schema``), the choices of the training and
search keys (``choices``), optional packages a config needs (``packages``), and the command line's checks
before Hydra composes it (``cli_checks``)."""
