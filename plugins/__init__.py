"""minjiang.plugins: the built-in domain plugins (medicine, forestry, ocean, materials)."""

if __name__ != "minjiang.plugins":  # this folder is only importable as minjiang.plugins
    raise ImportError(
        f"'{__name__}' is minjiang.plugins: install minjiang (`make demo` or `pip install -e .`) and `import minjiang.plugins`"
    )
