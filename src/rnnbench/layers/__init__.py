"""Sequence layers from one-step cells: the runner (``recurrent.Recurrent``, also ``Stack`` and
``Bidirectional``), the readout with teacher forcing (``readout``), initial states (``initial_state``) and
cells written as a plain step function (``user_cell``)."""
