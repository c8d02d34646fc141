"""Build the optional C accelerator; everything else is in pyproject.toml.

``optional=True``: where the extension cannot be compiled (no compiler, an unusual
platform), the install goes on and conveyor uses its pure-Python queue.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("conveyor._speedups", ["src/conveyor/_speedups.c"], optional=True),
    ],
)
