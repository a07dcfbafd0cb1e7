"""Contract test kits for plugin authors, shipped as a pytest plugin (entry point ``pytest11``).

Subclass a contract class in your plugin's tests, give it the fixture it asks for, and the whole
conformance suite runs against your implementation — as fsspec's abstract tests do. Kits live in
their own modules (``clearml_core.testing.storage``, ``clearml_core.testing.controlplane``) so that
importing this package costs nothing.
"""
