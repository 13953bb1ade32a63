"""What an admin does, shared by the admin API and the settings page.

Each module takes a session and a workspace id and raises :mod:`plugin.admin.errors`; none
commits or enqueues: the caller commits, then nudges the queue, so work is never handed to a
worker before the rows it needs are visible.
"""
