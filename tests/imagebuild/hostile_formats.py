"""Hostile VMDK, VHD and VHDX files, built byte by byte: the sibling of hostile.py's QCOW2 list.

``HOSTILE_FORMATS`` lists ``HostileImage(name, build, error, match)`` with hostile.py's
contract: ``build(workdir)`` writes the image (and what it needs) and returns the path to
open; the repository root is ``workdir / "repo"``; files outside it (``workdir /
"outside*"``) exist so that following a name there would succeed if it were not refused.
Opening and reading the whole disk must raise exactly ``error`` with ``match`` in its message.

The entries live by format in :mod:`tests.imagebuild.hostile_vmdk` and
:mod:`tests.imagebuild.hostile_vhd` (VHD and VHDX).
"""

from __future__ import annotations

from tests.imagebuild.hostile_case import HostileImage
from tests.imagebuild.hostile_vhd import HOSTILE_VHD
from tests.imagebuild.hostile_vmdk import HOSTILE_VMDK

HOSTILE_FORMATS: list[HostileImage] = [*HOSTILE_VMDK, *HOSTILE_VHD]
