"""Trains the PyTorch KD tutorial's teacher on Fashion-MNIST in plain PyTorch, as a user would before
ever hearing of kd-sweep, and saves it with torch.save(model.state_dict()): the teacher the README's
"Your teacher and your images" example distils. Inputs are ToTensor() + Normalize(MEAN, STD); it
trains on the 55,000 images make_folder.py puts in train/ (not the 5,000 of validation/).

    python train_teacher.py OUT.pt [EPOCHS] [IDX_FOLDER]
"""
import gzip
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST's training images, as commonly written


class DeepNN(nn.Module):
    """The tutorial's teacher: four 3×3 convolutions (two max-pools), then two linear layers."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 128, 3, padding=1), nn.ReLU(), nn.Conv2d(128, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2, 2), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.classifier = nn.Sequential(nn.Linear(32 * 7 * 7, 512), nn.ReLU(), nn.Dropout(0.1),
                                        nn.Linear(512, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def idx(path, offset):
    data = bytearray(gzip.open(path).read())
    return torch.frombuffer(data[offset:], dtype=torch.uint8)


def main(out, epochs, src):
    torch.manual_seed(0)
    norm = lambda x: (x.float().view(-1, 1, 28, 28) / 255 - MEAN) / STD  # noqa: E731
    x = norm(idx(os.path.join(src, "train-images-idx3-ubyte.gz"), 16))[:55000]
    y = idx(os.path.join(src, "train-labels-idx1-ubyte.gz"), 8).long()[:55000]
    xt = norm(idx(os.path.join(src, "t10k-images-idx3-ubyte.gz"), 16))
    yt = idx(os.path.join(src, "t10k-labels-idx1-ubyte.gz"), 8).long()
    model = DeepNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.time()
    for epoch in range(epochs):
        model.train()
        for idx_ in torch.randperm(len(y)).split(128):
            loss = F.cross_entropy(model(x[idx_]), y[idx_])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            right = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in zip(xt.split(1000), yt.split(1000)))
        print(f"epoch {epoch + 1}: test accuracy {100 * right / len(yt):.2f} % ({time.time() - start:.0f} s)")
    torch.save(model.state_dict(), out)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2,
         sys.argv[3] if len(sys.argv) > 3 else "/usr/share/datasets/fashion-mnist")
