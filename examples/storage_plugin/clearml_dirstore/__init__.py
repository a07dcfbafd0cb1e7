"""dirstore://NAME/KEY: an example clearml-core storage backend (objects as files in a folder)."""
