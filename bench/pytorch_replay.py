"""Replays a kd-sweep training run in plain PyTorch, the way the PyTorch KD tutorial trains: the same
network written as `nn.Sequential` (bench/pytorch_reference.py), `torch.optim.Adam` with its defaults,
`nn.Dropout`, `F.cross_entropy`, and the tutorial's soft-target loss. It starts from the initial
weights kd-sweep wrote, seeds torch's generator before every step with that step's seed (kd-sweep
draws each step's dropout mask from a seed of its own, so that a run continued from a checkpoint draws
what it would have drawn), takes the batches in kd-sweep's order, and writes every step's loss and the
final weights for the caller to compare.

    python bench/pytorch_replay.py DIR...   # each DIR holds meta.json and the .bin files kd-sweep wrote

Several folders replay one after another in one process (torch's import takes seconds, a replay a
fraction of one); every replay seeds torch's generator itself, so none depends on the one before.

Files (little-endian, row-major): init.bin (float32, the parameters of meta["params"] in order),
train_x.bin (float32, N×C×H×W), train_y.bin (int64), order.bin (int64, one permutation of 0..N per
epoch), teacher.bin (float32 N×classes, for a distilled student). Writes steps.json and final.bin, and
eval.bin (evaluation-mode logits of the first meta["eval_rows"] training images) when asked. With
meta["arch"] = "torchscript" the network is the TorchScript file meta["script"]; a zoo name
("resnet20", "wrn-16-2") is bench/cifar_nets.py's twin of kd-sweep's network, whose parameters are
matched by name (meta["params"] lists kd-sweep's names in init.bin's order). meta["recipe"], when
present, names the optimizer and learning-rate schedule (torch.optim's, with foreach=True: the
multi-tensor path; see `optimizer`). meta["precision"] = "bf16" runs the forward pass under
torch.autocast(dtype=torch.bfloat16) and the loss on the logits cast to float32, as kd-sweep's
`precision = "bf16"` does; meta["channels_last"] = true puts the network and its inputs in
torch.channels_last. meta["method"], when present, trains with that distillation method's loss
from bench/kd_losses.py (hyper-parameters in meta["method_params"]); CTKD's temperature parameter θ
(starting at 1, as kd-sweep's) is trained by the same optimizer and written to steps.json.
"""
import ctypes
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cifar_nets import build  # noqa: E402
import kd_losses  # noqa: E402
from kd_losses import loss as method_loss  # noqa: E402
from pytorch_reference import student, teacher  # noqa: E402


def read(path, dtype, shape):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=dtype).reshape(shape)


def raw(t):
    """A tensor's bytes as stored (float32 little-endian here), read in one copy: `bytes(storage)`
    walks the storage an element at a time in Python (3 s for a 200,000-parameter network)."""
    t = t.detach().contiguous().cpu()
    return ctypes.string_at(t.data_ptr(), t.numel() * t.element_size())


# the tutorial's KD loss (bench/kd_losses.py): kd-sweep's `losses::kd` writes it op for op
tutorial_kd_loss = kd_losses.tutorial_kd


def optimizer(model, meta, extra=()):
    """torch.optim's optimizer and lr_scheduler for meta["recipe"] (kd-sweep's optim::Recipe): the
    scheduler is stepped once after each epoch, as the PyTorch examples do."""
    r = meta.get("recipe") or {}
    lr, epochs = meta["lr"], meta["epochs"]
    wd = r.get("weight_decay", 0.0)
    trained = list(model.parameters()) + list(extra)
    if r.get("optimizer", "adam") == "sgd":
        opt = torch.optim.SGD(trained, lr=lr, momentum=r["momentum"], nesterov=r["nesterov"],
                              weight_decay=wd, foreach=True)
    else:
        opt = torch.optim.Adam(trained, lr=lr, weight_decay=wd, foreach=True)
    schedule, warmup = r.get("schedule", "constant"), r.get("warmup_epochs", 0)
    sched = torch.optim.lr_scheduler
    if schedule == "multistep":
        main = sched.MultiStepLR(opt, milestones=r["milestones"], gamma=r["gamma"])
    elif schedule == "cosine":
        main = sched.CosineAnnealingLR(opt, T_max=epochs - warmup)
    else:
        main = None
    if warmup == 0:
        return opt, main
    # epoch k of w at k/w of the rate
    warm = sched.LinearLR(opt, start_factor=1 / warmup, end_factor=1.0, total_iters=max(warmup - 1, 1))
    if main is None:
        return opt, warm
    return opt, sched.SequentialLR(opt, [warm, main], milestones=[warmup])


def main(folder):
    meta = json.load(open(os.path.join(folder, "meta.json")))
    torch.set_num_threads(1)
    # nn.CrossEntropyLoss(label_smoothing=eps) in every cross-entropy term, the methods' too
    eps = meta.get("label_smoothing", 0.0)
    kd_losses.LABEL_SMOOTHING = eps
    c, h, w = meta["shape"]
    if meta["arch"] == "torchscript":
        # a user's own network, loaded from the very file kd-sweep trained
        model = torch.jit.load(meta["script"])
        params = list(model.parameters())
    elif meta["arch"] in ("teacher", "student"):
        tutorial = teacher if meta["arch"] == "teacher" else student
        model = tutorial(c, h, w, meta["classes"])
        params = list(model.parameters())
    else:
        # a zoo network: kd-sweep's names are PyTorch's
        model = build(meta["arch"], c, meta["classes"])
        named = dict(model.named_parameters())
        params = [named[spec["name"]] for spec in meta["params"]]
        assert len(params) == len(named), "every parameter is replayed"
    flat = read(os.path.join(folder, "init.bin"), torch.float32, (-1,))
    at = 0
    with torch.no_grad():
        for p, spec in zip(params, meta["params"], strict=True):
            assert list(p.shape) == spec["shape"], (spec["name"], list(p.shape), spec["shape"])
            n = p.numel()
            p.copy_(flat[at : at + n].reshape(p.shape))
            at += n
    assert at == flat.numel()
    # meta["channels_last"]: the network and its inputs in torch.channels_last, as a PyTorch user
    # writes it (kd-sweep's `channels_last = true`)
    fmt = torch.channels_last if meta.get("channels_last") else torch.contiguous_format
    model.to(memory_format=fmt)
    n = meta["n_train"]
    xs = read(os.path.join(folder, "train_x.bin"), torch.float32, (n, c, h, w))
    ys = read(os.path.join(folder, "train_y.bin"), torch.int64, (n,))
    order = read(os.path.join(folder, "order.bin"), torch.int64, (meta["epochs"], n))
    method = meta.get("method")
    distil = meta["alpha"] > 0 or method is not None
    if distil:
        logits = read(os.path.join(folder, "teacher.bin"), torch.float32, (n, meta["classes"]))
    theta = torch.nn.Parameter(torch.ones(1)) if method == "ctkd" else None
    opt, scheduler = optimizer(model, meta, [theta] if theta is not None else [])
    step_seeds = iter(meta["step_seeds"])
    model.train()
    losses = []
    bs = meta["batch_size"]
    for epoch in range(meta["epochs"]):
        if epoch > 0 and scheduler is not None:
            scheduler.step()
        for begin in range(0, n, bs):
            idx = order[epoch, begin : begin + bs]
            torch.manual_seed(next(step_seeds))
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=meta.get("precision") == "bf16"):
                # the loss in float32 (bf16 logits are cast up first, as kd-sweep's losses take them)
                out = model(xs[idx].contiguous(memory_format=fmt)).float()
                if method is not None:
                    loss = method_loss(method, out, logits[idx], ys[idx], meta["method_params"], epoch + 1, theta)
                elif distil:
                    loss = tutorial_kd_loss(out, logits[idx], ys[idx], meta["temperature"], meta["alpha"], eps)
                else:
                    loss = F.cross_entropy(out, ys[idx], label_smoothing=eps)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    if meta.get("eval_rows"):
        # evaluation-mode logits: batch norm's running statistics at work
        model.eval()
        with torch.no_grad():
            out = model(xs[: meta["eval_rows"]].contiguous(memory_format=fmt))
        with open(os.path.join(folder, "eval.bin"), "wb") as f:
            f.write(raw(out))
    with open(os.path.join(folder, "final.bin"), "wb") as f:
        for p in params:
            f.write(raw(p))
    result = {"torch": torch.__version__, "step_losses": losses}
    if theta is not None:
        result["theta"] = theta.item()
    json.dump(result, open(os.path.join(folder, "steps.json"), "w"))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: pytorch_replay.py DIR...")
    for folder in sys.argv[1:]:
        main(folder)
