"""``python -m pixelwise``: the same as the ``pixelwise`` command."""

import sys

from .cli import main

sys.exit(main())
