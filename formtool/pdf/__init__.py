"""PDF forms: definitions, blank forms, personal copies, reading filled forms."""
