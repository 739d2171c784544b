"""The network a run trains, from its config (``network.build_model``): input layer, stacked recurrent
layers, dropout, output layer; its size from a parameter budget (``budget``) and its initialisation
(``init``)."""
