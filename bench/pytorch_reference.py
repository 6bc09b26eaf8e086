"""The same training-step loop as `kd-sweep bench` section 2, in PyTorch, on the same libtorch (the
torch==2.11.0 wheel kd-sweep links against): the teacher with cross-entropy, the student with the KD
loss, batch 128, Adam, one fixed batch, one thread. Prints images/s as JSON.

    python bench/pytorch_reference.py --threads 1 --teacher-steps 30 --student-steps 300
"""
import argparse, json, time
import torch
import torch.nn as nn
import torch.nn.functional as F


def teacher(c, h, w, classes=10):
    return nn.Sequential(
        nn.Conv2d(c, 128, 3, padding=1), nn.ReLU(), nn.Conv2d(128, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (h // 4) * (w // 4), 512), nn.ReLU(), nn.Dropout(0.1), nn.Linear(512, classes))


def student(c, h, w, classes=10):
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * (h // 4) * (w // 4), 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, classes))


def kd_loss(s, t, y, temperature=4.0, alpha=0.5):
    ce = F.cross_entropy(s, y)
    log_ps = F.log_softmax(s / temperature, dim=-1)
    log_pt = F.log_softmax(t / temperature, dim=-1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(-1).mean()
    return (1 - alpha) * ce + alpha * temperature * temperature * kl


def rate(model, warmup, steps, shape, device, distil):
    torch.manual_seed(0)
    model = model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(128, *shape, device=device)
    y = torch.randint(0, 10, (128,), device=device)
    t = torch.randn(128, 10, device=device)

    def step():
        out = model(x)
        loss = kd_loss(out, t, y) if distil else F.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * 128 / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup-steps", type=int, default=3)
    p.add_argument("--teacher-steps", type=int, default=30)
    p.add_argument("--student-steps", type=int, default=300)
    p.add_argument("--shape", default="1,28,28")
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    c, h, w = map(int, a.shape.split(","))
    print(json.dumps({
        "torch": torch.__version__,
        "teacher_images_per_s": rate(teacher(c, h, w), a.warmup_steps, a.teacher_steps, (c, h, w), a.device, False),
        "student_images_per_s": rate(student(c, h, w), a.warmup_steps, a.student_steps, (c, h, w), a.device, True),
    }))


if __name__ == "__main__":
    main()
