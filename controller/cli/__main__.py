"""``python -m controller.cli``: the ``hemsd`` command."""

import sys

from controller.cli import main

sys.exit(main())
