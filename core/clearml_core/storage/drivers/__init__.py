"""The built-in storage drivers: local files, HTTP(S), and fsspec for schemes no plugin claims.

Each module is imported only when a URL of its scheme is first used.
"""
