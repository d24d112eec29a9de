from fleetops.errors import AppError, Conflict, NotAuthenticated, PermissionDenied, TooManyRequests


class InvalidCredentials(NotAuthenticated):
    """Wrong username or password; deliberately does not say which."""


class AccountLocked(TooManyRequests):
    """Too many failures for this user or from this address; wait and retry."""


class RoleTooHigh(PermissionDenied):
    """A token cannot carry more rights than its owner."""


class UsernameTaken(Conflict):
    pass


class LastAdmin(Conflict):
    """The fleet must keep one active admin, or nobody can manage users again."""


class WeakPassword(AppError):
    status_code = 400
