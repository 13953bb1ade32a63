"""History backfill: a store's customers and orders from before installation, and the milestones
they passed — imported set-based, resumable, recorded as history or celebrated on request.

Entry point: :func:`plugin.backfill.runner.run_backfill` (the ``milestones backfill`` command).
"""
