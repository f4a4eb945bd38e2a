"""The markdown report says what a poor reconstruction means instead of printing the number alone."""

import numpy as np
import pandas as pd
import pytest

from scdeconv._report import reconstruction_lines


def _reconstruction(deviance_explained):
    genes = pd.DataFrame({"correlation": 0.3, "deviance_explained": deviance_explained})
    return {"genes": genes, "cells": pd.DataFrame({"correlation": [0.5, 0.6]})}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([-0.08, -0.05, 0.02, np.nan], "**Warning:** a median deviance explained of -0.05"),  # NaN genes ignored
        ([0.0, 0.0, 0.3], "**Warning:**"),
        ([0.01, 0.03, 0.2], "**Note:** a median deviance explained of 0.03"),
        ([0.2, 0.3, 0.4], None),
    ],
)
def test_reconstruction_warns_when_no_better_than_the_null(values, expected):
    lines = reconstruction_lines(_reconstruction(values))
    assert lines[0].startswith("- Reconstruction of the held-out cells: median correlation per gene 0.30")
    if expected is None:
        assert len(lines) == 1
        return
    assert len(lines) == 2 and lines[1].startswith(f"  {expected}")
    assert "each gene its average share of the cell's library" in lines[1]
    assert "epochs" in lines[1] and "cells" in lines[1]
    if expected.startswith("**Warning"):
        assert "no better than" in lines[1] and ("worse than it" in lines[1]) == bool(np.nanmedian(values) < 0)
