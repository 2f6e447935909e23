"""Labeling configs: the XML language (parse, validate), derived schemas, sample tasks."""
