"""Adds up the parameters and multiply-adds of the layers a cells file builds."""

from __future__ import annotations

from ..cost import batchnorm_params, conv_cost, linear_cost
from .plan_types import HW


class Counter:
    """Adds up parameters and multiply-adds of convolutions, batch norms and linear layers."""

    def __init__(self) -> None:
        self.params = 0
        self.macs = 0

    def conv(self, c_in: int, c_out: int, kernel: HW, out_hw: HW, groups: int = 1) -> None:
        p, m = conv_cost(c_in, c_out, kernel, out_hw, groups=groups)
        self.params += p
        self.macs += m

    def bn(self, channels: int) -> None:
        self.params += batchnorm_params(channels)

    def relu_conv_bn(self, c_in: int, c_out: int, kernel: int, out_hw: HW) -> None:
        self.conv(c_in, c_out, (kernel, kernel), out_hw)
        self.bn(c_out)

    def factorized_reduce(self, c_in: int, c_out: int, out_hw: HW) -> None:
        self.conv(c_in, c_out // 2, (1, 1), out_hw)
        self.conv(c_in, c_out - c_out // 2, (1, 1), out_hw)
        self.bn(c_out)

    def linear(self, c_in: int, c_out: int) -> None:
        p, m = linear_cost(c_in, c_out)
        self.params += p
        self.macs += m
