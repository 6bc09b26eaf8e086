"""The distillation losses kd-sweep offers, written in plain PyTorch from the papers' equations, for
tests/methods_parity.rs (each loss and its gradient on random logits) and for bench/pytorch_replay.py
(a few training steps of each method replayed in PyTorch). Independent of kd-sweep's code: where a
paper's reference repository fixes a detail (a reduction, an epsilon), it is followed and noted.

    python kd_losses.py DIR...   # DIR/case.json + logits in DIR/*.bin -> DIR/torch.json (loss, grads)
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

# ε of every cross-entropy term (nn.CrossEntropyLoss(label_smoothing=ε)); the replay sets it
LABEL_SMOOTHING = 0.0


def ce(s, y):
    return F.cross_entropy(s, y, label_smoothing=LABEL_SMOOTHING)


def kl(s, t, temperature):
    """KL(softmax(t/T) || softmax(s/T)), summed over classes, averaged over the batch. The teacher's
    distribution enters as log-probabilities (log_target=True); with softmax(t/T) instead, p_t
    differs in its last bit, and so does the gradient."""
    return F.kl_div(F.log_softmax(s / temperature, dim=1), F.log_softmax(t / temperature, dim=1),
                    reduction="batchmean", log_target=True)


def zscore(z):
    """Logit standardisation (Sun et al. 2024): (z - mean) / (unbiased std + 1e-7), per row."""
    return (z - z.mean(dim=1, keepdim=True)) / (z.std(dim=1, keepdim=True) + 1e-7)


def tutorial_kd(s, t, y, temperature, alpha, label_smoothing=None):
    """Hinton et al. 2015 as the PyTorch knowledge-distillation tutorial writes it: soft targets
    weighted by alpha (with T^2), cross-entropy by 1 - alpha (label_smoothing: LABEL_SMOOTHING's)."""
    eps = LABEL_SMOOTHING if label_smoothing is None else label_smoothing
    soft_targets = F.softmax(t / temperature, dim=-1)
    soft_prob = F.log_softmax(s / temperature, dim=-1)
    soft_loss = (
        torch.sum(soft_targets * (soft_targets.log() - soft_prob))
        / soft_prob.size()[0]
        * (temperature**2)
    )
    label_loss = F.cross_entropy(s, y, label_smoothing=eps)
    return alpha * soft_loss + (1 - alpha) * label_loss


def kd(s, t, y, temperature, alpha, standardize=False):
    """Hinton et al. 2015: (1 - a) CE(s, y) + a T^2 KL, as the tutorial writes it; with
    standardisation (Sun et al. 2024) the KL takes Z(s), Z(t)."""
    if not standardize:
        return tutorial_kd(s, t, y, temperature, alpha)
    zs, zt = zscore(s), zscore(t)
    return (1 - alpha) * ce(s, y) + alpha * temperature ** 2 * kl(zs, zt, temperature)


def dkd(s, t, y, alpha, beta, temperature, warm, standardize=False):
    """Zhao et al. 2022: CE + w (a TCKD + b NCKD). TCKD: KL of [p(target), p(rest)]; NCKD: KL over the
    non-target classes (the target's logit pushed down by 1000 after /T, as mdistiller does); both
    summed over everything, / batch, x T^2."""
    zs, zt = (zscore(s), zscore(t)) if standardize else (s, t)
    gt = F.one_hot(y, s.shape[1]).float()
    ps, pt = F.softmax(zs / temperature, dim=1), F.softmax(zt / temperature, dim=1)
    bs = torch.stack([(ps * gt).sum(1), (ps * (1 - gt)).sum(1)], dim=1)
    bt = torch.stack([(pt * gt).sum(1), (pt * (1 - gt)).sum(1)], dim=1)
    b = s.shape[0]
    tckd = F.kl_div(torch.log(bs), bt, reduction="sum") / b * temperature ** 2
    log_qs = F.log_softmax(zs / temperature - 1000.0 * gt, dim=1)
    qt = F.softmax(zt / temperature - 1000.0 * gt, dim=1)
    nckd = F.kl_div(log_qs, qt, reduction="sum") / b * temperature ** 2
    return ce(s, y) + warm * (alpha * tckd + beta * nckd)


def mean_pearson(a, b):
    """Mean over rows of the Pearson correlation of a's row with b's (cosine of the centred rows,
    + 1e-8 on the product of the norms, as DIST's code)."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-8)).mean()


def dist(s, t, y, beta, gamma, tau):
    """Huang et al. 2022: CE + b tau^2 (1 - inter-class relation) + g tau^2 (1 - intra-class)."""
    ys, yt = F.softmax(s / tau, dim=1), F.softmax(t / tau, dim=1)
    inter = 1 - mean_pearson(ys, yt)
    intra = 1 - mean_pearson(ys.t(), yt.t())
    return ce(s, y) + beta * tau ** 2 * inter + gamma * tau ** 2 * intra


def multi_t(s, t, y, temperatures, alpha):
    """The multi-temperature term of MLKD (Jin et al. 2023), averaged over the set."""
    total = sum(temp ** 2 * kl(s, t, temp) for temp in temperatures)
    return (1 - alpha) * ce(s, y) + alpha / len(temperatures) * total


class Reverse(torch.autograd.Function):
    """Gradient reversal: identity forward, lambda x gradient backward (CTKD's GRL)."""

    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return ctx.lam * grad, None


def ctkd_lambda(epoch, ramp):
    """CTKD's cosine ramp: -1/2 (1 - cos(pi min(epoch, ramp) / ramp)), epochs from 1."""
    return -0.5 * (1 - math.cos(math.pi * min(epoch, ramp) / ramp))


def ctkd_temperature(theta, epoch, t_min, t_range, ramp):
    return t_min + t_range * torch.sigmoid(Reverse.apply(theta, ctkd_lambda(epoch, ramp)))


def ctkd(s, t, y, theta, alpha, epoch, t_min, t_range, ramp):
    """Li et al. 2023, global CTKD: logit KD at the learned temperature (T^2 too)."""
    temp = ctkd_temperature(theta, epoch, t_min, t_range, ramp)
    return ((1 - alpha) * ce(s, y) + alpha * temp ** 2 * kl(s, t, temp)).squeeze()


def ttm(s, t, y, beta, temperature):
    """Zheng & Yang 2024, transformed teacher matching: CE + b KL(p_t^gamma / sum p_t^gamma || softmax(s)),
    the teacher's probabilities power-transformed with gamma = 1/T, the student's left at T = 1, no T^2."""
    p_t = torch.softmax(t, dim=1) ** (1.0 / temperature)
    p_t = p_t / p_t.sum(dim=1, keepdim=True)
    div = F.kl_div(F.log_softmax(s, dim=1), p_t, reduction="none").sum(dim=1).mean()
    return ce(s, y) + beta * div


def loss(method, s, t, y, p, epoch, theta=None):
    """The loss of `method` with hyper-parameters `p` (kd-sweep's names) in `epoch` (from 1)."""
    if method == "logit":
        return kd(s, t, y, p["temperature"], p["alpha"], p.get("zscore", False))
    if method == "dkd":
        warm = min(epoch / p["warmup"], 1.0)
        return dkd(s, t, y, p["alpha"], p["beta"], p["temperature"], warm, p.get("zscore", False))
    if method == "dist":
        return dist(s, t, y, p["beta"], p["gamma"], p["temperature"])
    if method == "multi-t":
        return multi_t(s, t, y, p["temperatures"], p["alpha"])
    if method == "ttm":
        return ttm(s, t, y, p["beta"], p["temperature"])
    if method == "ctkd":
        return ctkd(s, t, y, theta, p["alpha"], epoch, p["t_min"], p["t_range"], p["ramp"])
    raise ValueError(method)


def read(path, dtype, shape):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=dtype).reshape(shape)


def main(folder):
    """One loss and its gradients on the logits kd-sweep wrote: case.json names the method."""
    case = json.load(open(os.path.join(folder, "case.json")))
    b, c = case["batch"], case["classes"]
    s = read(os.path.join(folder, "s.bin"), torch.float32, (b, c)).clone().requires_grad_(True)
    t = read(os.path.join(folder, "t.bin"), torch.float32, (b, c))
    y = read(os.path.join(folder, "y.bin"), torch.int64, (b,))
    theta = torch.tensor([case.get("theta", 1.0)], requires_grad=True)
    out = loss(case["method"], s, t, y, case["params"], case["epoch"], theta)
    out.backward()
    result = {"loss": out.item(), "grad": s.grad.flatten().tolist()}
    if theta.grad is not None:
        result["theta_grad"] = theta.grad.item()
        # the same in float64: the reference both float32 results are measured against
        s64 = s.detach().double().requires_grad_(True)
        theta64 = theta.detach().double().requires_grad_(True)
        loss(case["method"], s64, t.double(), y, case["params"], case["epoch"], theta64).backward()
        result["theta_grad_f64"] = theta64.grad.item()
    json.dump(result, open(os.path.join(folder, "torch.json"), "w"))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: kd_losses.py DIR...")
    # several folders in one process: torch's import takes seconds, a loss a millisecond
    for folder in sys.argv[1:]:
        main(folder)
