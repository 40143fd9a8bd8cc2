"""Encoder/decoder networks, registered by name (``model.network.type``)."""

from ..registry import NETWORKS
from . import conv, linear, mlp  # noqa: F401  (register the networks)
from .base import Encoder, GaussianHead, Network, with_condition

__all__ = ["NETWORKS", "Encoder", "GaussianHead", "Network", "with_condition"]
