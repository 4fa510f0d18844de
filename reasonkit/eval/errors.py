"""The error of `rk eval`: a bad dataset, output folder or calibrator request."""

from __future__ import annotations

from reasonkit.errors import ReasonKitError


class EvalError(ReasonKitError, ValueError):
    """A problem with an eval's input (dataset, output folder, options), said in one sentence."""
