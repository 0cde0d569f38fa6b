"""``python -m metatrain_mbe`` runs the ``mtt-mbe`` command line."""

import sys

from .interface.cli import main

sys.exit(main())
