"""``python -m pixelwise.cli``: the same as the ``pixelwise`` command."""

import sys

from . import main

sys.exit(main())
