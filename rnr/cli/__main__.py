"""``python -m rnr.cli`` runs the ``rnr`` command line."""

import sys

from . import main

sys.exit(main())
