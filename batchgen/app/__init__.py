"""The commands, one module each: ``run`` (with ``demo``), ``validate`` and ``template``,
``status`` and ``report``.

This is the top of the one-way import graph: a command wires the manifest reader, the state
store, the engine, a provider and the outputs together. Nothing below imports from here.
"""
