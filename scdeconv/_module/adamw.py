"""AdamW as one fused kernel call per step, without ``torch.optim``'s start-up cost.

``torch.optim`` imports ``torch._dynamo`` the first time any optimizer is built (about 1.7 s per
process on a 2-core CPU: a tenth of training Paul15 end to end). This class keeps the same state
and calls the same fused kernel as ``torch.optim.AdamW(fused=True)``, so its steps are
bit-identical to it (tests check this); where the kernel is missing it hands over to
``torch.optim.AdamW``.
"""

from __future__ import annotations

import torch


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


def adamw(params: list[torch.nn.Parameter], lr: float, weight_decay: float):
    """:class:`FusedAdamW` where this torch has its kernel for the parameters' device, else ``torch.optim.AdamW``."""
    params = list(params)
    devices = {p.device.type for p in params}
    if hasattr(torch, "_fused_adamw_") and devices <= {"cpu", "cuda"} and len(devices) == 1:
        return FusedAdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
