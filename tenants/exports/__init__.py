"""Portable exports of one tenant and restores from them (docs/lifecycle.md, "Export and restore").

format.py: the file (ZIP with a signed, hashed manifest), written from and loaded into any placement.
jobs.py: the `tenants.export` and `tenants.restore` job kinds. services.py: the entry points.
"""
