"""AdamW as one fused kernel call per step, without ``torch.optim``'s start-up cost.

``torch.optim`` imports ``torch._dynamo`` the first time any optimizer is built (seconds per process
on a 2-core CPU). :class:`FusedAdamW` keeps the same state and calls the same fused kernel as
``torch.optim.AdamW(fused=True)``, so its steps are bit-identical to it (tests check this).
The kernel is a private torch operator: :func:`adamw` uses it only after one probe step on the
parameters' device has matched the AdamW update written out by hand, and otherwise hands over to
the public ``torch.optim.AdamW``.
"""

from __future__ import annotations

import functools
import logging

import torch

logger = logging.getLogger("scdeconv")


class FusedAdamW:
    """Decoupled-weight-decay Adam over one list of parameters (same tensors on one device)."""

    def __init__(
        self,
        params: list[torch.nn.Parameter],
        *,
        lr: float,
        weight_decay: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        active = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not active:
            return
        steps = [self.steps[i] for i in active]
        torch._foreach_add_(steps, 1)
        torch._fused_adamw_(
            [self.params[i] for i in active],
            [self.params[i].grad for i in active],
            [self.exp_avgs[i] for i in active],
            [self.exp_avg_sqs[i] for i in active],
            [],
            steps,
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=self.weight_decay,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()


def _reference_step(param, grad, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8):
    """The first AdamW update written out (Loshchilov & Hutter 2019), for the probe."""
    param = param * (1 - lr * weight_decay)
    m, v = (1 - betas[0]) * grad, (1 - betas[1]) * grad * grad
    m_hat, v_hat = m / (1 - betas[0]), v / (1 - betas[1])
    return param - lr * m_hat / (v_hat.sqrt() + eps)


@functools.cache
def fused_kernel_works(device_type: str) -> bool:
    """Whether torch's private fused AdamW kernel runs on this device type and gives AdamW's update."""
    try:
        param = torch.nn.Parameter(torch.tensor([0.5, -1.0, 2.0], device=device_type))
        param.grad = torch.tensor([0.1, -0.3, 0.0], device=device_type)
        expected = _reference_step(param.detach(), param.grad, lr=1e-2, weight_decay=0.1)
        FusedAdamW([param], lr=1e-2, weight_decay=0.1).step()
        return bool(torch.allclose(param.detach(), expected, rtol=1e-5, atol=1e-7))
    except (AttributeError, RuntimeError, TypeError, NotImplementedError) as err:
        logger.debug("torch's fused AdamW kernel is not usable on %s (%s); using torch.optim.AdamW.", device_type, err)
        return False


def adamw(params: list[torch.nn.Parameter], lr: float, weight_decay: float):
    """:class:`FusedAdamW` where torch's kernel works for the parameters' device, else ``torch.optim.AdamW``."""
    params = list(params)
    devices = {p.device.type for p in params}
    if len(devices) == 1 and fused_kernel_works(devices.pop()):
        return FusedAdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
