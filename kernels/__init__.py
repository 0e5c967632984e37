"""minjiang.kernels: generic array kernels (NumPy reference, numba CPU, CuPy GPU)."""

if __name__ != "minjiang.kernels":  # this folder is only importable as minjiang.kernels
    raise ImportError(
        f"'{__name__}' is minjiang.kernels: install minjiang (`make demo` or `pip install -e .`) and `import minjiang.kernels`"
    )
