"""The PyTorch side of `kd-sweep bench`'s "the field's networks": one epoch of each network as a
PyTorch user trains it — the network of bench/cifar_nets.py (kd-sweep's twins), the data resident on
the device, a fresh permutation per epoch, `F.cross_entropy`, `torch.optim.SGD(lr=0.05,
momentum=0.9, weight_decay=5e-4, foreach=True)`, `zero_grad(set_to_none=True)`, bf16 through
`torch.autocast` (the loss on the logits cast to float32), cuDNN's benchmark search on (what
kd-sweep does too when determinism is not asked for). The epoch is timed after a warm-up of a few
steps, with the device synchronised before and after. Prints one JSON object:
{"network": {"fp32": seconds, "bf16": seconds}, ..., "torch": version}.

    python pytorch_networks.py --device cuda:0 --nets resnet20,resnet56 --images 45000 --batch 64
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cifar_nets import build  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def epoch_seconds(name, precision, args, device):
    c, h, w = args.shape
    torch.manual_seed(0)
    model = build(name, c, args.classes).to(device)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, foreach=True)
    x = torch.randn(args.images, c, h, w, device=device).to(memory_format=fmt)
    y = torch.randint(args.classes, (args.images,), device=device)
    bf16 = precision == "bf16"

    def steps(n):
        perm = torch.randperm(args.images, device=device)[:n]
        for begin in range(0, n, args.batch):
            idx = perm[begin : begin + args.batch]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(x[idx])
            loss = F.cross_entropy(out.float(), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    # the warm-up ends with a batch of the timed epoch's last, shorter shape, so cuDNN's benchmark
    # search for it is not timed (as kd-sweep's side does)
    steps(args.warmup * args.batch + args.images % args.batch)
    sync(device)
    start = time.perf_counter()
    steps(args.images)
    sync(device)
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--nets", default="resnet20,resnet56,wrn-40-2,resnet8x4")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--images", type=int, default=45000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--shape", default="3,32,32")
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--warmup", type=int, default=20, help="steps before the timed epoch")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-benchmark", action="store_true", help="cuDNN's benchmark search off (PyTorch's default)")
    p.add_argument("--channels-last", action="store_true", help="the network and its inputs channels-last")
    args = p.parse_args()
    args.shape = [int(v) for v in args.shape.split(",")]
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = not args.no_benchmark
    out = {"torch": torch.__version__}
    for name in args.nets.split(","):
        out[name] = {prec: epoch_seconds(name, prec, args, device) for prec in args.precisions.split(",")}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
