"""Parts of the recovery benchmark; run it with ``python benchmarks/recovery.py``."""
