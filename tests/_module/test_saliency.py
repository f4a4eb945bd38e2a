import numpy as np
import pytest
import torch
from conftest import stream

from scdeconv._module.autoencoder import Autoencoder
from scdeconv._module.reducers import AttributionProfile, ExpressionShift, NodeSetScores, SetMedians
from scdeconv._module.saliency import attribution, cell_gene_zscores, jacobian, set_medians, set_membership


def tiny_network() -> Autoencoder:
    """3 genes -> 2 hidden -> 1 node, hand-set weights, ReLU-like Softplus (beta large)."""
    module = Autoencoder(3, n_latent=1, n_hidden=(2,), softplus_beta=1000.0)
    with torch.no_grad():
        module.encoder[0].weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [-1.0, 1.0, 3.0]]))
        module.encoder[0].bias.zero_()
        module.encoder[1].weight.copy_(torch.tensor([[2.0, -1.0]]))
        module.encoder[1].bias.copy_(torch.tensor([10.0]))  # the node is active
    return module


def test_guided_matches_hand_computation():
    module = tiny_network()
    x = torch.tensor([[1.0, 0.2, 0.4]])
    # Hidden pre-activations: h1 = 1 - 0.4 + 0.2 = 0.8 (active), h2 = -1 + 0.2 + 1.2 = 0.4 (active).
    # Plain gradient: 2 * W1[0] - 1 * W1[1] = [3, -5, -2].
    # Guided: the gradient at h2 is -1 < 0, clamped to 0, so only 2 * W1[0] = [2, -4, 1] remains.
    guided = jacobian(module, x, guided=True)[0, 0].numpy()
    plain = jacobian(module, x, guided=False)[0, 0].numpy()
    np.testing.assert_allclose(plain, [3.0, -5.0, -2.0], atol=1e-4)
    np.testing.assert_allclose(guided, [2.0, -4.0, 1.0], atol=1e-4)


def test_guided_zero_when_hidden_unit_inactive():
    module = tiny_network()
    x = torch.tensor([[0.0, 1.0, 0.0]])  # h1 = -2 (inactive), h2 = 1: guided path through h2 clamps to 0
    np.testing.assert_allclose(jacobian(module, x, guided=True)[0, 0].numpy(), 0.0, atol=1e-6)


def random_network(seed=0, n_hidden=(7, 5)) -> Autoencoder:
    return Autoencoder(
        11, n_latent=4, n_hidden=n_hidden, softplus_beta=2.0, generator=torch.Generator().manual_seed(seed)
    )


@pytest.mark.parametrize("n_hidden", [(), (6,), (7, 5)])
def test_gradient_matches_autograd(n_hidden):
    module = random_network(n_hidden=n_hidden).double()
    x = torch.rand(3, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    expected = torch.stack([torch.autograd.functional.jacobian(module.encode, xi) for xi in x])
    np.testing.assert_allclose(jacobian(module, x, guided=False).numpy(), expected.numpy(), rtol=1e-10, atol=1e-12)


class _GuidedSoftplus(torch.autograd.Function):
    """Reference guided backprop through autograd: clamp the incoming gradient at zero."""

    @staticmethod
    def forward(ctx, a, beta):
        ctx.save_for_backward(a)
        ctx.beta = beta
        return torch.nn.functional.softplus(a, beta=beta)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad.clamp(min=0) * torch.sigmoid(ctx.beta * a), None


def test_guided_matches_autograd_reference():
    module = random_network().double()
    x = torch.rand(2, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def guided_encode(inp):
        h = inp
        for layer, beta in zip(module.encoder, module.encoder_betas, strict=True):
            h = _GuidedSoftplus.apply(layer(h), beta)
        return h

    expected = torch.stack([torch.autograd.functional.jacobian(guided_encode, xi) for xi in x])
    np.testing.assert_allclose(jacobian(module, x, guided=True).numpy(), expected.numpy(), rtol=1e-10, atol=1e-12)


def test_columns_and_methods():
    module = random_network().double()
    x = torch.rand(3, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    cols = torch.tensor([1, 4, 9])
    full = attribution(module, x, method="gradient")
    np.testing.assert_allclose(attribution(module, x, method="gradient", columns=cols), full[:, :, cols])
    np.testing.assert_allclose(attribution(module, x, method="grad_x_input"), full * x.unsqueeze(1))
    # Integrated gradients satisfy completeness: attributions sum to f(x) - f(0).
    ig = attribution(module, x, method="integrated_gradients", n_steps=200).sum(dim=2)
    delta = module.encode(x) - module.encode(torch.zeros_like(x))
    np.testing.assert_allclose(ig.numpy(), delta.detach().numpy(), rtol=1e-3, atol=1e-5)
    with pytest.raises(ValueError, match="method must be one of"):
        attribution(module, x, method="lrp")


def test_set_medians_match_numpy():
    values = torch.rand(4, 3, 10, generator=torch.Generator().manual_seed(0))
    sets = [torch.tensor([0, 2, 5]), torch.tensor([1, 3, 4, 8]), torch.tensor([7])]
    out = set_medians(values, sets).numpy()
    for s, cols in enumerate(sets):
        np.testing.assert_allclose(out[:, :, s], np.median(values.numpy()[:, :, cols.numpy()], axis=2), rtol=1e-6)


def test_streamed_reductions_do_not_depend_on_the_batch_size():
    module = random_network()
    counts = np.random.default_rng(0).poisson(2.0, size=(25, 11)).astype(np.float32)
    sets = [np.array([0, 1, 2]), np.array([3, 5, 7, 10])]
    per_cell = np.arange(25)  # each cell its own group: group sums are per-cell values
    one = stream(module, counts, [SetMedians(25, 4, sets)], labels=per_cell, batch_size=25)[0].sums
    many, profile = stream(module, counts, [SetMedians(25, 4, sets), AttributionProfile(1, 4, 11)],
                           labels=None, batch_size=4)  # fmt: skip
    many_cells = stream(module, counts, [SetMedians(25, 4, sets)], labels=per_cell, batch_size=4)[0].sums
    np.testing.assert_allclose(many_cells, one, rtol=1e-5)
    np.testing.assert_allclose(many.sums[0], one.sum(axis=0), rtol=1e-5)
    assert one.shape == (25, 4, 2) and (one >= 0).all()
    x = module.prepare_input(torch.from_numpy(counts))
    total = jacobian(module, x, guided=True).abs().sum(dim=0).detach().numpy()
    np.testing.assert_allclose(profile.sums[0], total, rtol=1e-4)


def test_weighted_attribution_profile_matches_per_group_sums():
    # Per group and node, the node-weighted sum of |attribution| over the group's cells: summed by
    # matrix products over a batch's mixed groups, it must equal the per-group numpy sums.
    module = random_network()
    rng = np.random.default_rng(4)
    counts = rng.poisson(2.0, size=(30, 11)).astype(np.float32)
    labels = np.array([2, 0, 2, 1] * 7 + [0, 2])  # groups interleaved within every batch
    weights = rng.random((30, 4))
    (profile,) = stream(module, counts, [AttributionProfile(3, 4, 11, node_weights=weights)], labels=labels,
                        method="gradient", batch_size=7)  # fmt: skip
    x = module.prepare_input(torch.from_numpy(counts))
    magnitude = attribution(module, x, method="gradient").abs().double().numpy()
    for group in range(3):
        rows = labels == group
        expected = np.einsum("cn,cng->ng", weights[rows], magnitude[rows])
        np.testing.assert_allclose(profile.sums[group], expected, rtol=1e-5, atol=1e-7)  # float32 batch sums
        np.testing.assert_allclose(profile.weight_totals[group], weights[rows].sum(axis=0), rtol=1e-6)


def robust_reference(row: np.ndarray, bins: np.ndarray, sets: list[np.ndarray]) -> np.ndarray:
    """numpy, one (cell, node) row: bin-wise (x - median) / (1.4826 MAD, else 1.2533 mean |dev|), Stouffer."""
    z = np.zeros_like(row)
    for b in np.unique(bins):
        block = row[bins == b]
        deviation = block - np.median(block)
        spread = 1.4826 * np.median(np.abs(deviation)) or 1.2533 * np.abs(deviation).mean()
        z[bins == b] = deviation / spread if spread > 0 else 0.0
    return np.array([z[cols].sum() / np.sqrt(len(cols)) for cols in sets])


def test_cell_gene_zscores_match_a_numpy_reference():
    # Bin 0 has no spread (all zeros: must score 0, not NaN); bin 1 is mostly zeros (MAD 0, so the
    # mean absolute deviation scales it); bin 2 is dense. Odd bin sizes: torch's median of an even
    # count is the lower middle value, numpy's the mean of the two, so sizes are kept odd here.
    rng = np.random.default_rng(0)
    values = rng.gamma(1.0, size=(5, 3, 15))
    values[:, :, :5] = 0.0
    values[:, :, 5:8] = 0.0
    bins = np.repeat(np.arange(3), 5)
    sets = [np.array([0, 5, 9]), np.array([1, 2, 3, 4, 11]), np.array([7])]
    got = (cell_gene_zscores(torch.as_tensor(values), torch.as_tensor(bins)) @ torch.as_tensor(
        set_membership(sets, 15))).numpy()  # fmt: skip
    expected = np.stack([[robust_reference(row, bins, sets) for row in cell] for cell in values])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_node_set_scores_reducer_sums_the_per_cell_scores():
    module = random_network()
    counts = np.random.default_rng(2).poisson(2.0, size=(9, 11)).astype(np.float32)
    sets = [np.array([0, 1, 2]), np.array([4, 5, 6, 7])]
    bins = np.arange(11) % 2
    per_cell = np.arange(9)
    one = stream(module, counts, [NodeSetScores(9, 4, bins, sets)], labels=per_cell, method="grad_x_input",
                 batch_size=9)[0]  # fmt: skip
    many = stream(module, counts, [NodeSetScores(9, 4, bins, sets)], labels=per_cell, method="grad_x_input",
                  batch_size=2)[0]  # fmt: skip
    assert one.sums.shape == (9, 4, 2)
    np.testing.assert_allclose(many.sums, one.sums, rtol=1e-4, atol=1e-5)  # float32 matmuls of other shapes
    x = module.prepare_input(torch.from_numpy(counts))
    magnitude = attribution(module, x, method="grad_x_input").abs()
    gene_z = cell_gene_zscores(magnitude, torch.as_tensor(bins))
    expected = (gene_z @ torch.as_tensor(set_membership(sets, 11), dtype=gene_z.dtype)).numpy()
    np.testing.assert_allclose(one.sums, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(one.squares, expected**2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(one.gene_z, gene_z.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["guided", "gradient", "grad_x_input"])
def test_set_medians_by_set_match_full_attribution(method):
    from scdeconv._module.saliency import set_medians_by_set

    rng = np.random.default_rng(0)
    module = Autoencoder(30, n_latent=4, n_hidden=(6, 5), softplus_beta=2.0, generator=torch.Generator().manual_seed(0))
    x = module.prepare_input(torch.from_numpy(rng.poisson(2.0, size=(7, 30)).astype(np.float32)))
    sets = [torch.as_tensor(rng.choice(30, n, replace=False)) for n in (1, 2, 5, 8)]  # odd and even sizes
    full = set_medians(attribution(module, x, method=method).abs_(), sets).numpy()
    np.testing.assert_allclose(set_medians_by_set(module, x, sets, method=method), full, rtol=1e-5, atol=1e-7)


def test_cell_gene_zscores_are_finite_for_vanishing_attributions():
    # Dead nodes have attributions near float underflow: 1 / spread must not overflow to inf
    # (which gave NaN for their zero deviations); such rows score exactly 0.
    values = torch.full((2, 3, 8), 1e-42, dtype=torch.float32)
    values[:, :, ::3] = 3e-42
    values[1, 2] = torch.linspace(0.0, 1.0, 8)  # one ordinary row beside them
    bins = torch.as_tensor(np.repeat(np.arange(2), 4))
    sets = [np.array([0, 1, 5])]
    scores = cell_gene_zscores(values, bins) @ torch.as_tensor(set_membership(sets, 8), dtype=torch.float32)
    assert torch.isfinite(scores).all()
    assert (scores[0] == 0).all() and (scores[1, :2] == 0).all() and scores[1, 2].abs().sum() > 0


def test_expression_shift_reducer_matches_numpy_and_merges_exactly():
    # Per group, each node's active cells' mean input minus the group's mean, in the group's SDs;
    # pooled over groups from the sums (not an average of group shifts). No attribution is needed.
    module = random_network()
    counts = np.random.default_rng(3).poisson(2.0, size=(30, 11)).astype(np.float32)
    weights = (np.random.default_rng(4).random((30, 4)) < 0.3).astype(float)
    labels = np.arange(30) % 2
    (whole,) = stream(module, counts, [ExpressionShift(2, 4, 11, weights)], labels=labels, batch_size=7)
    assert not whole.needs_magnitude
    x = module.prepare_input(torch.from_numpy(counts)).numpy().astype(np.float64)

    def shift(rows):
        sd_gene = x[rows].std(axis=0)
        return np.stack([(x[rows][weights[rows, j] > 0].mean(0) - x[rows].mean(0)) / sd_gene for j in range(4)])

    np.testing.assert_allclose(whole.pooled(), shift(np.arange(30)), rtol=1e-5)
    for g in (0, 1):
        np.testing.assert_allclose(whole.profiles()[g], shift(np.flatnonzero(labels == g)), rtol=1e-5)
    # Two halves of the cells, fed separately and merged, give the sums of one pass.
    first = np.where(np.arange(30) < 13, labels, -1)
    second = np.where(np.arange(30) >= 13, labels, -1)
    (a,) = stream(module, counts, [ExpressionShift(2, 4, 11, weights)], labels=first)
    (b,) = stream(module, counts, [ExpressionShift(2, 4, 11, weights)], labels=second)
    a.merge(b)
    np.testing.assert_allclose(a.pooled(), whole.pooled(), rtol=1e-10)


@pytest.mark.parametrize("method", ["grad_x_input", "guided"])
def test_cell_activity_alone_matches_the_full_attribution_block(method):
    # Without a reducer that reads the whole block, the activity sums |gradient| over nodes and
    # scales by the input (grad_x_input); the numbers are those of the full block, and batches
    # written into one reused buffer (uneven last batch) leave nothing behind.
    from scdeconv._module.reducers import CellActivity
    from scdeconv.scoring import cell_activity

    module = random_network()
    counts = np.random.default_rng(5).poisson(2.0, size=(23, 11)).astype(np.float32)
    bins = np.repeat(np.arange(3), [4, 4, 3])
    sets = [np.array([0, 4, 8]), np.array([1, 2, 9, 10])]
    labels = np.arange(23) % 2
    (alone,) = stream(module, counts, [CellActivity(23, 2, bins, sets)], labels=labels, method=method, batch_size=4)
    with_block, _ = stream(module, counts, [CellActivity(23, 2, bins, sets), AttributionProfile(2, 4, 11)],
                           labels=labels, method=method, batch_size=4)  # fmt: skip
    x = module.prepare_input(torch.from_numpy(counts)).double()
    totals = attribution(module.double(), x, method=method).abs().sum(dim=1).numpy()
    expected, gene_z = cell_activity(totals, bins, sets)
    for reducer in (alone, with_block):
        np.testing.assert_allclose(reducer.activity, expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(reducer.gene_z[0], gene_z[labels == 0].sum(axis=0), rtol=1e-4, atol=1e-4)
