"""The package's version, here at the bottom so any layer can name it (an error message asking
for a bug report does) without importing the package root. ``pyproject.toml`` states it too."""

__version__ = "0.1.0"
