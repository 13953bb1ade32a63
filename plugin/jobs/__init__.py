"""Background work: draining the inbox, running effects, sweeping what was left behind."""
