"""Experiments over many runs: grids of run folders (``pyro-vae sweep``), their summary, and hyperparameter
search (``pyro-vae tune``)."""
