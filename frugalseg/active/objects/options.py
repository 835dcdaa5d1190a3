"""The options mechanism (`frugalseg.options`) under the names the objects wing's rooms import it by."""

from frugalseg.options import (
    Choice,
    Configurable,
    absolute_paths,
    build_options,
    given_options,
    options_class,
)

__all__ = [
    "Choice",
    "Configurable",
    "absolute_paths",
    "build_options",
    "given_options",
    "options_class",
]
