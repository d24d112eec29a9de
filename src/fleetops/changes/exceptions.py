from fleetops.errors import AppError, Conflict, NotFound, PermissionDenied


class ChangeNotFound(NotFound):
    pass


class WorkflowNotFound(NotFound):
    pass


class EmptyTargetSet(Conflict):
    """A selector that matches no host (now): never means "all hosts"."""


class InvalidChange(AppError):
    """The workflow or parameters do not validate; `issues` has the exact paths."""

    status_code = 422


class ApprovalRefused(Conflict):
    """A named approval rule refused (e.g. RequesterCannotApprove)."""


class NotAllowedToApprove(PermissionDenied):
    pass


class WorkflowVersionExists(Conflict):
    pass


class WorkflowNameReserved(PermissionDenied):
    """The name belongs to a workflow fleetops ships: no version of it is registered by hand."""


class WorkflowNotPinned(Conflict):
    """A pre-approved change names a workflow that is not the pinned (name, version, digest)."""
