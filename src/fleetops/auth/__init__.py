"""Users, roles, API tokens and UI sessions."""
