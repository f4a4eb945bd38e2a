"""Datasets: the paper's Paul15 data and 200 human T cells (bundled), and simulators with known truth."""

from ._paul15 import paul15
from ._simulate_hematopoiesis import simulate_hematopoiesis
from ._simulate_xor import simulate_xor
from ._wu2020 import wu2020_tcells

__all__ = ["paul15", "simulate_hematopoiesis", "simulate_xor", "wu2020_tcells"]
