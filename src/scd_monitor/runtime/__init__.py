"""What runs the daemon: scheduling, the results pipeline, state tracking, discovery,
the catalog in force, periodic jobs, and the composition root (daemon.py)."""
