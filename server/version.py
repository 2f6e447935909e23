"""Version numbers."""

__version__ = "0.1.0"
# The Label Studio backend version whose REST API the facade reproduces.
LS_BACKEND_VERSION = "0.9.1"
