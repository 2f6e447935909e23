"""ML backends: the HTTP client, live predictions, training, prediction jobs."""
