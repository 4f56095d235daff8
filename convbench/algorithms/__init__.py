"""The built-in algorithms, one module each.

Nothing registers on importing this package: the registry loads each module
in :data:`convbench.registry.BUILTIN_MODULES` with :func:`convbench.load_plugin`,
the same door a plugin module goes through, and each module registers its
class with :func:`convbench.register`.
"""
