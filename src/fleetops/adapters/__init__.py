"""The outside world behind small interfaces: SSH, local processes, and later tickets, buses."""
