"""The loss a training step descends, one function for single runs, populations and the benchmark."""


def training_loss(loss_sum, count, sequences, over_time: str):
    """What a step descends, from a batch's summed loss, its counted positions and its sequences.

    ``mean``: per counted position. ``sum``: summed over each sequence's counted positions, averaged
    over the sequences: Zaremba et al.'s PTB code (``reduce_sum(loss) / batch_size``) and Greff et
    al.'s (Qwlouse/pylstm, error_functions.py: "normalize by number of sequences"). With one sequence
    per update that is the sum over the sequence: its length times the mean."""
    return loss_sum / sequences if over_time == "sum" else loss_sum / count
