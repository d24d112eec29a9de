"""Web UI: server-rendered pages (Jinja2 + htmx) and vendored static assets."""
