"""Commands on this machine, behind the same Executor interface as remote hosts."""

from fleetops.adapters.local.executor import LocalExecutor, OutputCapture

__all__ = ["LocalExecutor", "OutputCapture"]
