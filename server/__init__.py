"""labelgraph server: settings, database, models and domain services."""
