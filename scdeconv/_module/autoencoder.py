"""The autoencoder of Kinalis et al. 2019: genes -> hidden -> representation -> hidden -> genes.

Pure torch: tensors in, tensors out, never AnnData.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._choices import Likelihood, check_choice

_MIN_RATE = 1e-8  # floor of the expected counts in the count likelihoods
_LOG_MIN_RATE = math.log(_MIN_RATE)


def normalize_input(counts: torch.Tensor, target_sum: float) -> torch.Tensor:
    """The encoder's input: log1p of counts scaled to a common library size.

    Cells with no counts stay zero (their scale factor is set to 1).
    """
    library = counts.sum(dim=1, keepdim=True)
    scale = torch.where(library > 0, target_sum / library.clamp(min=1e-12), torch.ones_like(library))
    return torch.log1p(counts * scale)


def count_constant(counts: torch.Tensor) -> torch.Tensor:
    """``sum(log(counts!))`` of a batch: the model-free part of the Poisson and NB likelihoods.

    Only non-zero counts contribute (``log(0!) = 0``), so only they are evaluated.
    """
    return torch.lgamma(counts[counts > 0] + 1).sum()


class Autoencoder(nn.Module):
    """Fully connected autoencoder with Softplus activations (the paper's architecture).

    Parameters
    ----------
    n_genes
        Input and output width.
    n_latent
        Nodes of the representation layer (paper: 64).
    n_hidden
        Widths of the hidden layers between input and representation, mirrored in the decoder
        (paper: ``(128,)``).
    softplus_beta
        Sharpness of every Softplus. ``None`` uses the layer's width, as the original code's
        ``Softplus(beta=layer_size)`` did (close to a ReLU).
    likelihood
        ``"poisson"`` or ``"nb"`` (negative binomial with a learned per-gene dispersion), both on
        raw counts; or ``"mse"`` on the log1p-normalised input.
    size_factors
        For count likelihoods, predict each cell's expression proportions (softmax) and scale by its
        library size, so deep and shallow cells are comparable. ``False`` reproduces the paper's
        direct non-negative (Softplus) output.
    target_sum
        Library size every cell's input is scaled to before ``log1p``.
    generator
        Seeds the Xavier initialisation, so runs are reproducible without global seeds.
    """

    def __init__(
        self,
        n_genes: int,
        *,
        n_latent: int = 64,
        n_hidden: Sequence[int] = (128,),
        softplus_beta: float | None = None,
        likelihood: Likelihood = "poisson",
        size_factors: bool = True,
        target_sum: float = 1e4,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        check_choice("likelihood", likelihood, Likelihood)
        self.likelihood = likelihood
        self.size_factors = size_factors
        self.target_sum = float(target_sum)
        widths = [n_genes, *n_hidden, n_latent]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        back = widths[::-1]
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(back))
        # Every encoder layer and every decoder layer but the last is followed by a Softplus.
        self.encoder_betas = [float(softplus_beta or w) for w in widths[1:]]
        self.decoder_betas = [float(softplus_beta or w) for w in back[1:-1]]
        if likelihood == "nb":
            self.log_theta = nn.Parameter(torch.zeros(n_genes))
        for layer in [*self.encoder, *self.decoder]:
            nn.init.xavier_uniform_(layer.weight, generator=generator)
            nn.init.zeros_(layer.bias)

    @property
    def n_latent(self) -> int:
        return self.encoder[-1].out_features

    @property
    def latent_weight(self) -> torch.Tensor:
        """Weights into the representation layer (n_latent x n_hidden[-1]), the ones penalised."""
        return self.encoder[-1].weight

    def prepare_input(self, counts: torch.Tensor) -> torch.Tensor:
        return normalize_input(counts, self.target_sum)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Representation of already prepared input ``x`` (see :meth:`prepare_input`)."""
        for layer, beta in zip(self.encoder, self.encoder_betas, strict=True):
            x = F.softplus(layer(x), beta=beta)
        return x

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output before the likelihood's link (logits of proportions, or log1p values)."""
        for layer, beta in zip(self.decoder[:-1], self.decoder_betas, strict=True):
            z = F.softplus(layer(z), beta=beta)
        return self.decoder[-1](z)

    def mean(self, out: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Expected counts from the decoder output."""
        if self.size_factors:
            return torch.softmax(out, dim=1) * counts.sum(dim=1, keepdim=True)
        return F.softplus(out)

    def expected_counts(self, counts: torch.Tensor) -> torch.Tensor:
        """The model's reconstruction of a batch, as expected counts (for every likelihood)."""
        out = self.decode(self.encode(self.prepare_input(counts)))
        if self.likelihood == "mse":  # out is log1p of counts scaled to target_sum
            return torch.expm1(out).clamp(min=0) * counts.sum(dim=1, keepdim=True) / self.target_sum
        return self.mean(out, counts)

    def reconstruction_loss(self, counts: torch.Tensor, *, constant: bool = True) -> torch.Tensor:
        """Mean per-entry negative log-likelihood (or squared error) of a batch of raw counts.

        ``constant=False`` leaves out ``log(counts!)``, the part of a count likelihood that does
        not depend on the model (training adds it back once per epoch, see :func:`count_constant`).
        """
        x = self.prepare_input(counts)
        out = self.decode(self.encode(x))
        if self.likelihood == "mse":
            return F.mse_loss(out, x)
        if self.likelihood == "poisson" and self.size_factors:
            # log(mu) = log_softmax(out) + log(library): one log-softmax pass instead of softmax, a
            # product and a log. Rates keep the 1e-8 floor of the other likelihoods: it stops the
            # gradient of grossly under-predicted entries; without it planted programmes were
            # recovered less well on the simulator.
            log_library = torch.log(counts.sum(dim=1, keepdim=True))
            log_mu = (torch.log_softmax(out, dim=1) + log_library).clamp(min=_LOG_MIN_RATE)
            nll_sum = torch.exp(log_mu).sum() - (counts * log_mu).sum()
            if constant:
                nll_sum = nll_sum + count_constant(counts)
            return nll_sum / counts.numel()
        mu = self.mean(out, counts).clamp(min=_MIN_RATE)
        if self.likelihood == "poisson":
            nll = mu - counts * torch.log(mu)
        else:
            theta = torch.exp(self.log_theta).clamp(min=1e-6)
            log_theta_mu = torch.log(theta + mu)
            nll = -(
                torch.lgamma(counts + theta)
                - torch.lgamma(theta)
                + theta * (torch.log(theta) - log_theta_mu)
                + counts * (torch.log(mu) - log_theta_mu)
            )
        nll_sum = nll.sum()
        if constant:
            nll_sum = nll_sum + count_constant(counts)
        return nll_sum / counts.numel()

    def orthogonality(self) -> torch.Tensor:
        """Soft orthogonality ``||I - W W^T||_F^2`` of the representation layer's weights.

        Applied to the weight tensor itself so it produces a gradient (the original code used
        ``.weight.data`` and so never penalised anything).
        """
        w = self.latent_weight
        gram = w @ w.T
        return ((torch.eye(gram.shape[0], device=w.device, dtype=w.dtype) - gram) ** 2).sum()

    def loss(
        self, counts: torch.Tensor, ortho_penalty: float, *, rec_weight: float = 1.0, constant: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Total training loss and its reconstruction part.

        ``rec_weight`` scales the reconstruction part of the total (a rank's share of a batch
        under data-parallel training); the returned reconstruction part is unscaled.
        ``constant`` as in :meth:`reconstruction_loss`.
        """
        rec = self.reconstruction_loss(counts, constant=constant)
        total = rec if rec_weight == 1.0 else rec * rec_weight
        if ortho_penalty > 0:
            return total + ortho_penalty * self.orthogonality(), rec
        return total, rec

    def forward(
        self, counts: torch.Tensor, ortho_penalty: float = 0.0, *, rec_weight: float = 1.0, constant: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The training loss (:meth:`loss`), so that ``DistributedDataParallel`` can wrap the model."""
        return self.loss(counts, ortho_penalty, rec_weight=rec_weight, constant=constant)

    # Serialisation as plain numpy arrays, so the model travels inside AnnData.uns.
    def weights_as_numpy(self) -> dict[str, np.ndarray]:
        return {k.replace(".", "_"): v.detach().cpu().numpy().copy() for k, v in self.state_dict().items()}

    def load_numpy_weights(self, weights: dict[str, np.ndarray]) -> None:
        expected = {k.replace(".", "_"): k for k in self.state_dict()}
        missing = set(expected) - set(weights)
        if missing:
            raise ValueError(f"Stored model weights lack {sorted(missing)}; the stored model is incomplete.")
        state = {name: torch.as_tensor(np.asarray(weights[key])) for key, name in expected.items()}
        self.load_state_dict(state)
