"""The inspection domain's errors, shared by the use cases and the queries that raise them."""

from __future__ import annotations

from fleetops.errors import Conflict, NotFound


class InspectionNotFound(NotFound):
    pass


class ModelNotFound(NotFound):
    pass


class NotEnoughResults(Conflict):
    """Too few healthy hosts of a model have a usable result to build its baseline."""
