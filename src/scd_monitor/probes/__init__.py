"""Probe kinds. One module per kind; :func:`build_probes` is the registry."""
