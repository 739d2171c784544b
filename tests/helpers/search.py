"""What the search tests share: a tiny generated task whose trials take about a second and need no
data files, and a small learning-rate space."""

TINY = [
    "task=arithmetic",
    "debug=fast",
    "task.max_digits=2",
    "task.eval_size=40",
    "search.name=t",
    "search.workers=1",
]
LR = "+search.space.trainer.lr={choices:[0.01,0.02,0.03,0.04,0.05]}"
