"""The milestone engine: a small condition language and when a customer crosses a condition.

Pure functions over plain data, testable without a database: :mod:`plugin.engine.conditions`
is the public face (parse, evaluate, describe), :mod:`plugin.engine.schemas` the JSON grammar
and its validation, :mod:`plugin.engine.dates` the calendar arithmetic of anniversaries.
"""
