"""Build of the compiled kernel and CSV reader; the rest of the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "stages._kernels",
            sources=["stages/_kernels.cpp"],
            language="c++",
            # No fused multiply-add: it would round the distances differently from SciPy's.
            extra_compile_args=["-std=c++17", "-O3", "-ffp-contract=off", "-fno-math-errno"],
        ),
        Extension(
            "stages._fastcsv",
            sources=["stages/_fastcsv.cpp"],
            language="c++",
            extra_compile_args=["-std=c++17", "-O2"],
        ),
    ]
)
