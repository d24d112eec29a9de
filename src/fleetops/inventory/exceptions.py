from fleetops.errors import BadRequest, Conflict, NotFound


class HostNotFound(NotFound):
    pass


class RackNotFound(NotFound):
    pass


class UnknownReference(Conflict):
    """A host or rack names a rack, cluster, datacenter or model that does not exist (yet)."""


class HostnameTaken(Conflict):
    pass


class RackNameTaken(Conflict):
    pass


class RackNotEmpty(Conflict):
    pass


class HostHasHistory(Conflict):
    """Rows elsewhere record what happened to the host; `references` counts them by kind."""


class InvalidSort(BadRequest):
    pass


class InventoryImportFailed(BadRequest):
    """The file was rejected as a whole; `issues` lists every problem with its line."""
