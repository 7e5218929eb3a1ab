"""``python -m filerestore.docgen``: see :mod:`filerestore.docgen`."""

import sys

from filerestore.docgen import main

sys.exit(main())
