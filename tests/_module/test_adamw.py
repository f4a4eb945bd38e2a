import subprocess
import sys

import pytest
import torch

from scdeconv._module.adamw import FusedAdamW, adamw
from scdeconv._module.autoencoder import Autoencoder


def _train(make_optimizer, steps: int = 5) -> list[torch.Tensor]:
    module = Autoencoder(30, n_latent=4, n_hidden=(8,), generator=torch.Generator().manual_seed(0))
    opt = make_optimizer(list(module.parameters()))
    rng = torch.Generator().manual_seed(1)
    counts = torch.poisson(torch.rand(16, 30, generator=rng) * 3, generator=rng)
    for _ in range(steps):
        loss, _ = module(counts, 0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_fused_adamw_steps_are_torch_adamw_steps(weight_decay):
    ours = _train(lambda p: FusedAdamW(p, lr=1e-2, weight_decay=weight_decay))
    torchs = _train(lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=weight_decay, fused=True))
    for a, b in zip(ours, torchs, strict=True):
        assert torch.equal(a, b)  # the same kernel on the same state: bit-identical
    assert not torch.equal(ours[0], _train(lambda p: FusedAdamW(p, lr=1e-2, weight_decay=0.0), steps=0)[0])


def test_adamw_uses_the_fused_class_on_cpu():
    assert isinstance(adamw([torch.nn.Parameter(torch.zeros(3))], 1e-3, 0.0), FusedAdamW)


@pytest.mark.slow
def test_training_does_not_import_dynamo():
    # The point of FusedAdamW: torch.optim imports torch._dynamo (seconds) on first use.
    code = (
        "import sys, numpy as np, torch\n"
        "from scipy import sparse\n"
        "from scdeconv._module.autoencoder import Autoencoder\n"
        "from scdeconv._module.config import FitConfig\n"
        "from scdeconv._module.training import fit\n"
        "x = sparse.csr_matrix(np.random.default_rng(0).poisson(1.0, (40, 12)).astype(np.float32))\n"
        "fit(Autoencoder(12, n_latent=3, n_hidden=(6,)), x, train_rows=np.arange(32), val_rows=np.arange(32, 40),\n"
        "    config=FitConfig(batch_size=8, max_epochs=2), progress=False)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
