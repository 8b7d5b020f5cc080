"""The one error class of model files."""


class ModelFileError(ValueError):
    """A model file is unreadable, corrupted, tampered with, inconsistent or from a
    newer format: :func:`fastgmm.load` raises this for every malformed file."""
