"""Writes experiments/nets/student.pt, the TorchScript student of experiments/torchscript.toml: a
small conv-batchnorm network as a user would bring it. Run with any PyTorch 2.x:

    python experiments/nets/make_student.py

`features` and `head` are exported so that feature distillation can use the network too.
"""
import os

import torch
import torch.nn as nn


class Student(nn.Module):
    def __init__(self, channels: int = 1, classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(32 * 7 * 7, classes)

    @torch.jit.export
    def features(self, x):
        return self.body(x)

    @torch.jit.export
    def head(self, f):
        return self.fc(torch.flatten(f, 1))

    def forward(self, x):
        return self.head(self.features(x))


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "student.pt")
    torch.jit.script(Student()).save(out)
    print(out)
