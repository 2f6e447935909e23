"""Task import: sources (bodies, files, archives, URLs), validation, staging, insert."""
