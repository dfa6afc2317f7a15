"""Training of the super-resolution networks (PyTorch); never imported by the plugin at run time.

Run from the repository root: ``python -m training.train``, ``python -m training.export``,
``python -m training.evaluate``, ``python -m training.normstats``.
"""
