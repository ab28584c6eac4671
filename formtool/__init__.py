"""formtool: fillable PDF forms, their import into CSV, and outreach mail."""

__version__ = "0.1.0"
