import numpy as np
import pytest
import torch
from scipy import stats

from scdeconv._module.autoencoder import Autoencoder


def batch(seed=0):
    return torch.from_numpy(np.random.default_rng(seed).poisson(3.0, size=(6, 9)).astype(np.float32))


def test_poisson_and_nb_losses_match_scipy():
    counts = batch()
    for likelihood in ("poisson", "nb"):
        # Seeded: some random inits give means below the 1e-8 floor that guards log(mu).
        generator = torch.Generator().manual_seed(0)
        module = Autoencoder(9, n_latent=3, n_hidden=(4,), likelihood=likelihood, generator=generator).double()
        x = counts.double()
        mu = module.mean(module.decode(module.encode(module.prepare_input(x))), x).detach().numpy()
        if likelihood == "poisson":
            expected = -stats.poisson.logpmf(x.numpy(), mu).mean()
        else:
            theta = np.exp(module.log_theta.detach().numpy())
            expected = -stats.nbinom.logpmf(x.numpy(), theta, theta / (theta + mu)).mean()
        assert float(module.reconstruction_loss(x).detach()) == pytest.approx(expected, rel=1e-8)


def test_orthogonality_penalty_reaches_the_gradient():
    # The original code computed the penalty on .weight.data: no gradient. Ours must have one.
    module = Autoencoder(9, n_latent=3, n_hidden=(4,))
    loss, _rec = module.loss(batch(), ortho_penalty=1.0)
    loss.backward()
    with_penalty = module.latent_weight.grad.clone()
    module.zero_grad()
    rec2 = module.reconstruction_loss(batch())
    rec2.backward()
    assert not torch.allclose(with_penalty, module.latent_weight.grad)
    w = module.latent_weight.detach()
    expected = ((torch.eye(3) - w @ w.T) ** 2).sum()
    assert float(module.orthogonality().detach()) == pytest.approx(float(expected), rel=1e-6)


def test_numpy_weights_round_trip():
    a = Autoencoder(9, n_latent=3, n_hidden=(4,), likelihood="nb", generator=torch.Generator().manual_seed(0))
    b = Autoencoder(9, n_latent=3, n_hidden=(4,), likelihood="nb", generator=torch.Generator().manual_seed(1))
    b.load_numpy_weights(a.weights_as_numpy())
    x = a.prepare_input(batch())
    assert torch.equal(a.encode(x), b.encode(x))
    with pytest.raises(ValueError, match="incomplete"):
        b.load_numpy_weights({})


def test_softplus_beta_defaults_to_layer_width():
    module = Autoencoder(9, n_latent=3, n_hidden=(4,))
    assert module.encoder_betas == [4.0, 3.0] and module.decoder_betas == [4.0]
