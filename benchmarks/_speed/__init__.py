"""Parts of ``benchmarks/speed.py``: the data it times on, the training engines, and the workers."""
