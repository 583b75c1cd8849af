"""The metrics: what each ``eval.metrics`` name computes (:mod:`.registry`; the torch-fidelity
metrics and their feature networks in :mod:`.fidelity`, small statistics in :mod:`.stats`), the
keys they log and which direction is better (:mod:`.keys`), the data set's default metrics
fitted to the Inception weights at hand (:mod:`.plan`), and a generator's samples scored with
them (:mod:`.evaluation`). Importing the package imports nothing: ``keys`` stays torch-free."""
