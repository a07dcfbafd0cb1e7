"""Storage: URL model, drivers, StorageManager, cache and transfers."""
