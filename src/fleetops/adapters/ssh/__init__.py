"""Commands on remote hosts over SSH (asyncssh), one reused connection per host."""

from fleetops.adapters.ssh.executor import HostKeyPolicy, SshConfig, SshExecutor

__all__ = ["HostKeyPolicy", "SshConfig", "SshExecutor"]
