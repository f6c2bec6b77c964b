"""gitool: sequence-to-function deep learning on genomes.

Importing this package is cheap: it must not import torch (the CLI's data commands and
``gitool --help`` never pay for it).
"""

__version__ = "0.1.0"
