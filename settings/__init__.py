"""Typed stack settings: the model, its validation and the reader for the running stack."""

from settings.base import Environment
from settings.compute import GpuPoolSettings
from settings.errors import Problem, SettingsError
from settings.load import parse_settings
from settings.model import StackSettings
from settings.stack import StackConfig, load_stack_config

__all__ = [
    "Environment",
    "GpuPoolSettings",
    "Problem",
    "SettingsError",
    "StackConfig",
    "StackSettings",
    "load_stack_config",
    "parse_settings",
]
