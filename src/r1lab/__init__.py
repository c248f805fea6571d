"""r1lab: train reasoning language models the way DeepSeek-R1 did.

Importing the package stays light: no torch-heavy submodule is imported here.
"""

__version__ = "0.1.0"
