"""Background jobs claimed through the database (:mod:`.queue`), run by each process's worker
(:mod:`.worker`); :mod:`.handlers` says which kinds there are."""
