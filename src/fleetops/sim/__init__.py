"""Fleet simulator: a generated fleet (and, later, its jobs, logs and faults) for the demo.

The product never imports this package; the edges (cli.py) wire it in.
"""
