"""NumPyro model programs, one per file, installed as ``bayesifu.models``.

Each file has a docstring with the mathematics, a ``model(..., obs=None)`` function that adds priors
and a likelihood to a pure-JAX forward model from :mod:`bayesifu`, and a ``main()`` example.
"""
