"""Guide families q(z|x), registered by name (``model.guide.type``)."""

from ..registry import GUIDES
from . import full_covariance, gaussian, iaf  # noqa: F401  (register the guides)
from .base import Guide, build_guide

__all__ = ["GUIDES", "Guide", "build_guide"]
