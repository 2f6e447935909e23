"""All domain logic: synchronous functions that run on a worker thread with a connection."""
