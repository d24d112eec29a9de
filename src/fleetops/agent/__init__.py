"""The file-tailing log agent: ships lines to a fleetops server with at-least-once delivery."""
