"""The CRD benchmark's networks in plain PyTorch, with the same parameter names, shapes and forward
pass as kd-sweep's `model.rs` (`resnet<6n+2>`, `resnet<6n+2>x4`, `wrn-<6n+4>-<w>`), so that a
kd-sweep state can be loaded by name (`tests/pytorch_parity.rs` replays kd-sweep's training of a
resnet20 in PyTorch) and the same network can be timed on both sides (`kd-sweep bench`, "the field's
networks"). Batch norm: PyTorch's defaults (momentum 0.1, eps 1e-5), as kd-sweep's.

    build("resnet20", in_channels=3, classes=100)
"""
import re

import torch.nn as nn
import torch.nn.functional as F


def bn(c):
    return nn.BatchNorm2d(c)


def conv(cin, cout, k, stride):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)


class ResBlock(nn.Module):
    """conv-bn-relu, conv-bn, plus the shortcut (a 1×1 conv and bn when the shape changes), relu."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = conv(cin, cout, 3, stride)
        self.bn1 = bn(cout)
        self.conv2 = conv(cout, cout, 3, 1)
        self.bn2 = bn(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(conv(cin, cout, 1, stride), bn(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x if self.downsample is None else self.downsample(x)
        return F.relu(out + short)


class ResNet(nn.Module):
    def __init__(self, depth, x4, in_channels, classes):
        super().__init__()
        widths = [32, 64, 128, 256] if x4 else [16, 16, 32, 64]
        n = (depth - 2) // 6
        self.conv1 = conv(in_channels, widths[0], 3, 1)
        self.bn1 = bn(widths[0])
        c = widths[0]
        for stage, w in enumerate(widths[1:]):
            blocks = []
            for b in range(n):
                blocks.append(ResBlock(c, w, 2 if stage > 0 and b == 0 else 1))
                c = w
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class WrnBlock(nn.Module):
    """Pre-activation: act = relu(bn1(x)); conv1, bn2-relu, conv2; plus x, or a 1×1 conv of act."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = bn(cin)
        self.conv1 = conv(cin, cout, 3, stride)
        self.bn2 = bn(cout)
        self.conv2 = conv(cout, cout, 3, 1)
        self.convShortcut = conv(cin, cout, 1, stride) if cin != cout else None

    def forward(self, x):
        act = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(act))))
        return out + (x if self.convShortcut is None else self.convShortcut(act))


class WrnGroup(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.layer = nn.Sequential(*blocks)

    def forward(self, x):
        return self.layer(x)


class Wrn(nn.Module):
    def __init__(self, depth, widen, in_channels, classes):
        super().__init__()
        n = (depth - 4) // 6
        self.conv1 = conv(in_channels, 16, 3, 1)
        c = 16
        for stage, out in enumerate([16 * widen, 32 * widen, 64 * widen]):
            blocks = []
            for b in range(n):
                blocks.append(WrnBlock(c, out, 2 if stage > 0 and b == 0 else 1))
                c = out
            setattr(self, f"block{stage + 1}", WrnGroup(blocks))
        self.bn1 = bn(c)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        x = F.relu(self.bn1(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def build(name, in_channels, classes):
    """The network kd-sweep calls `name`."""
    m = re.fullmatch(r"resnet(\d+)(x4)?", name)
    if m:
        return ResNet(int(m.group(1)), m.group(2) is not None, in_channels, classes)
    m = re.fullmatch(r"wrn-(\d+)-(\d+)", name)
    if m:
        return Wrn(int(m.group(1)), int(m.group(2)), in_channels, classes)
    raise ValueError(f"no PyTorch twin of {name}")
