"""Export: the format registry, the writers, and the media they copy."""
