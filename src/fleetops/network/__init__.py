"""The network: acting on the fleet's switch links, through changes like any other action."""
