"""One options dataclass per command, holding its defaults and the allowed range of every
number (checked on construction, before any work starts).

Library functions take these; the CLI fills them from its flags (which override a YAML
config's values) and shows each field's range in ``--help``. :mod:`~gitool.config.base`
holds what they share.
"""

from gitool.config.base import Options, Range, check_ranges, load_yaml_config, option
from gitool.config.build import BUILD_RUNTIME_ONLY, BuildOptions
from gitool.config.train import TrainConfig

__all__ = [
    "BUILD_RUNTIME_ONLY",
    "BuildOptions",
    "Options",
    "Range",
    "TrainConfig",
    "check_ranges",
    "load_yaml_config",
    "option",
]
