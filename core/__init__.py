"""minjiang.core: runtime, operator contracts, planner, executors, hookspecs, CLI."""

if __name__ != "minjiang.core":  # this folder is only importable as minjiang.core
    raise ImportError(f"'{__name__}' is minjiang.core: install minjiang (`make demo` or `pip install -e .`) and `import minjiang.core`")
