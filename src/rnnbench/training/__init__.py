"""One training run, top to bottom (``trainer.Trainer``; ``train(cfg, run_dir)``): optimisers, schedules,
progress, checkpoints that resume exactly, run files and their lock, the process settings a run changes
(threads, determinism, RNGs), the device, and live loggers."""
