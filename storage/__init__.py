"""minjiang.storage: stores, datasets, chunk checksums, catalog and lineage."""

if __name__ != "minjiang.storage":  # this folder is only importable as minjiang.storage
    raise ImportError(f"'{__name__}' is minjiang.storage: install minjiang (`make demo` or `pip install -e .`) and `import minjiang.storage`")
