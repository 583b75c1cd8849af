"""A small CNN digit classifier that serves as ganx's offline feature network for MNIST-like data.

Trained by ``scripts/train_mnist_net.py`` on the embedded MNIST-5k digits (4,000 train, 1,000
held out); its weights ship as ``ganx/data/mnist_cnn.pt``. It gives 64-d features (global
average pool of the last conv block) for FID/KID/precision-recall, and class logits for the
Inception Score analogue and the class-coverage metric.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_block(width_in: int, width_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(width_in, width_out, 3, padding=1),
        nn.BatchNorm2d(width_out),
        nn.ReLU(),
        nn.Conv2d(width_out, width_out, 3, padding=1),
        nn.BatchNorm2d(width_out),
        nn.ReLU(),
    )


class MnistCNN(nn.Module):
    FEATURES = 64

    def __init__(self):
        super().__init__()
        self.block1 = conv_block(1, 16)  # 28 -> pool -> 14
        self.block2 = conv_block(16, 32)  # 14 -> pool -> 7
        self.block3 = conv_block(32, self.FEATURES)  # 7 -> global average pool
        self.head = nn.Linear(self.FEATURES, 10)

    @staticmethod
    def prepare(images: torch.Tensor) -> torch.Tensor:
        """Any image batch -> 1x28x28 in [-1, 1]: uint8 [0, 255] or float [-1, 1], grey or RGB
        (RGB is averaged), any size (bilinear, antialiased)."""
        x = images.float()
        if images.dtype == torch.uint8:
            x = x / 127.5 - 1.0
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        if x.shape[-1] != 28 or x.shape[-2] != 28:
            x = F.interpolate(
                x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False
            )
        return x

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.max_pool2d(self.block1(x), 2)
        h = F.max_pool2d(self.block2(h), 2)
        features = self.block3(h).mean(dim=(2, 3))
        return features, self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[1]
