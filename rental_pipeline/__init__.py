"""Weekly NYC short-term rental listings in, a validated and versioned price model out."""

__version__ = "0.1.0"
