"""The simulator: fake SCD providers and a fake X-Road, on loopback only.

``fleet`` (the Simulator, fake providers) composes ``securityserver`` and ``confsource``
over a ``directory``; all serve with ``rawhttp``; ``net`` holds what they share.
"""
