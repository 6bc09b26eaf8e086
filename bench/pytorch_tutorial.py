"""The PyTorch knowledge-distillation tutorial's method, as a PyTorch user runs a (T, alpha) sweep: the
teacher trained once with cross-entropy, then for every grid point a fresh student trained with the
teacher's forward pass inside every step (teacher in eval mode, no_grad), the tutorial's soft-target
loss, Adam, shuffled batches, and the test set evaluated once at the end of each model's training, in
batches of 128 (the tutorial's test loader).
All of the machine's cores (torch's default thread count). Also trains the cross-entropy baseline
student, as the tutorial does.

    python bench/pytorch_tutorial.py DIR --seed 0 --teacher-epochs 1 --student-epochs 3 \\
        --temperatures 1,2,4,8,16 --alphas 0.25,0.5,0.75,0.9

`--temperatures ""` trains the teacher and the baseline only (the many-seed check in BENCHMARKS.md).
`--teacher-weights FILE` distils from a kd-sweep teacher (its cache entry's weights.safetensors, the
tutorial teacher) instead of training one: the students of both sides then share their teacher.

DIR holds the data kd-sweep prepared (the same training subset, normalised the same way):
meta.json ({"shape": [C, H, W], "classes": K, "n_train": N, "n_test": M}), train_x.bin, test_x.bin
(float32), train_y.bin, test_y.bin (int64). Prints JSON: per-phase seconds and test accuracies.
"""
import argparse
import json
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import student, teacher  # noqa: E402
from pytorch_replay import read, tutorial_kd_loss  # noqa: E402


def batches(n, batch_size, generator):
    order = torch.randperm(n, generator=generator)
    for begin in range(0, n, batch_size):
        yield order[begin : begin + batch_size]


def train(model, xs, ys, epochs, batch_size, lr, generator, teacher_model=None, temperature=1.0, alpha=0.0):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        model.train()
        for idx in batches(xs.shape[0], batch_size, generator):
            x, y = xs[idx], ys[idx]
            out = model(x)
            if teacher_model is None:
                loss = F.cross_entropy(out, y)
            else:
                with torch.no_grad():
                    t = teacher_model(x)
                loss = tutorial_kd_loss(out, t, y, temperature, alpha)
            opt.zero_grad()
            loss.backward()
            opt.step()


def test_accuracy(model, xs, ys, batch_size=128):
    model.eval()
    correct = 0
    with torch.no_grad():
        for begin in range(0, xs.shape[0], batch_size):
            pred = model(xs[begin : begin + batch_size]).argmax(-1)
            correct += (pred == ys[begin : begin + batch_size]).sum().item()
    return 100.0 * correct / xs.shape[0]


# kd-sweep's names for the tutorial teacher's layers → their index in pytorch_reference.teacher
TEACHER_LAYERS = {"conv1": 0, "conv2": 2, "conv3": 5, "conv4": 7, "fc1": 11, "fc2": 14}


def load_kd_sweep_teacher(model, path):
    """Loads a kd-sweep teacher's weights.safetensors (float32 tensors named conv1.weight … fc2.bias)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    state = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        begin, end = v["data_offsets"]
        t = torch.frombuffer(bytearray(raw[8 + n + begin : 8 + n + end]), dtype=torch.float32)
        layer, kind = name.split(".")[-2:]
        state[f"{TEACHER_LAYERS[layer]}.{kind}"] = t.reshape(v["shape"])
    model.load_state_dict(state)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--teacher-epochs", type=int, default=1)
    p.add_argument("--student-epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--temperatures", default="1,2,4,8,16")
    p.add_argument("--alphas", default="0.25,0.5,0.75,0.9")
    p.add_argument("--teacher-weights", default=None)
    a = p.parse_args()
    meta = json.load(open(os.path.join(a.dir, "meta.json")))
    c, h, w = meta["shape"]
    n, m, k = meta["n_train"], meta["n_test"], meta["classes"]
    train_x = read(os.path.join(a.dir, "train_x.bin"), torch.float32, (n, c, h, w))
    train_y = read(os.path.join(a.dir, "train_y.bin"), torch.int64, (n,))
    test_x = read(os.path.join(a.dir, "test_x.bin"), torch.float32, (m, c, h, w))
    test_y = read(os.path.join(a.dir, "test_y.bin"), torch.int64, (m,))
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    started = time.perf_counter()

    t_model = teacher(c, h, w, k)
    if a.teacher_weights:
        load_kd_sweep_teacher(t_model, a.teacher_weights)
    else:
        train(t_model, train_x, train_y, a.teacher_epochs, a.batch_size, a.lr, gen)
    teacher_acc = test_accuracy(t_model, test_x, test_y)
    t_model.eval()
    teacher_secs = time.perf_counter() - started

    # every student of the seed starts from the same initial weights, as in the tutorial
    init = student(c, h, w, k).state_dict()

    def fresh():
        s = student(c, h, w, k)
        s.load_state_dict(init)
        return s

    base = fresh()
    train(base, train_x, train_y, a.student_epochs, a.batch_size, a.lr, gen)
    baseline_acc = test_accuracy(base, test_x, test_y)
    students = []
    for temperature in [float(v) for v in a.temperatures.split(",") if v]:
        for alpha in [float(v) for v in a.alphas.split(",") if v]:
            s = fresh()
            train(s, train_x, train_y, a.student_epochs, a.batch_size, a.lr, gen, t_model, temperature, alpha)
            students.append({"temperature": temperature, "alpha": alpha, "test_acc": test_accuracy(s, test_x, test_y)})
    total = time.perf_counter() - started
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "teacher_secs": teacher_secs,
        "student_secs": total - teacher_secs,
        "total_secs": total,
        "teacher_test_acc": teacher_acc,
        "baseline_test_acc": baseline_acc,
        "students": students,
    }))


if __name__ == "__main__":
    main()
