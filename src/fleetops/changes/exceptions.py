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
