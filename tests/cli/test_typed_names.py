"""Names typed on the command line (``--name``) as the person typed them, in any locale."""

from __future__ import annotations

import argparse

import pytest

from frugalseg.cli.annotate_person import add_options
from frugalseg.cli.options import typed_text

#: ``voiture é`` as Python hands it over under the C locale: the two bytes of é as lone surrogates.
UNDER_C_LOCALE = "voiture \udcc3\udca9"


@pytest.mark.parametrize("given", [UNDER_C_LOCALE, "voiture é"])
def test_a_typed_name_is_utf_8_text_whatever_the_locale(given):
    assert typed_text(given) == "voiture é"


def test_annotate_add_names_an_object_as_typed_under_the_c_locale():
    """It refused the name: "holds control characters: 'voiture \\udcc3\\udca9'"."""
    parser = argparse.ArgumentParser()
    add_options(parser)
    words = ["--state", "s", "--video", "v", "--frame", "0", "--mask", "m.png"]
    words += ["--name", f"1={UNDER_C_LOCALE}"]
    assert parser.parse_args(words).name == [(1, "voiture é")]
