"""Sample a NumPyro model with NUTS or emcee and return ArviZ results (see :mod:`.runner`)."""

from .runner import *  # noqa: F403
from .runner import __all__, _finish, _rank_normalised, _rank_rhat  # noqa: F401
