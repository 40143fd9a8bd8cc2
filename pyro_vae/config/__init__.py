"""Typed, validated configs: schema helpers, YAML loading and the run config."""

from .loading import apply_overrides, read_yaml
from .schema import component, describe, from_dict, opt, to_dict

__all__ = ["apply_overrides", "component", "describe", "from_dict", "opt", "read_yaml", "to_dict"]
