"""Storages: settings, backends (S3, Redis), sync and the background worker."""
