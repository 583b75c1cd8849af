"""The Dirac-GAN of Mescheder et al. 2018 (sec. 2.2): data is a Dirac at 0, the generator is a
single parameter theta (every sample equals theta) and the discriminator is D(x) = psi * x.
The unique equilibrium is (theta, psi) = (0, 0). The paper's figures start from (1, 1).
"""

from __future__ import annotations

import torch
from torch import nn


class DiracGenerator(nn.Module):
    data = "points"  # trains on dataset=dirac only (read through _target_)
    resolutions = (1,)

    def __init__(self, latent_dim: int = 1, theta0: float = 1.0):
        super().__init__()
        self.latent_dim = latent_dim
        self.theta = nn.Parameter(torch.tensor([float(theta0)]))

    def forward(self, z):
        # the latent code is ignored: p_theta is a Dirac at theta
        return self.theta.expand(z.shape[0], 1)


class DiracDiscriminator(nn.Module):
    def __init__(self, psi0: float = 1.0):
        super().__init__()
        self.psi = nn.Parameter(torch.tensor([float(psi0)]))

    def forward(self, x):
        return (self.psi * x).flatten()
