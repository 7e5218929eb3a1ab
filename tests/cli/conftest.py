"""The GPT + ext4 images (tests/imagebuild/gpt_ext4.py) that the CLI and open_stack tests share."""

from __future__ import annotations

import pytest

from tests.imagebuild import gpt_ext4 as images


@pytest.fixture(scope="module")
def ext4() -> images.Built:
    return images.single_ext4()


@pytest.fixture(scope="module")
def two() -> images.Built:
    return images.two_ext4()
