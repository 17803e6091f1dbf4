"""``python -m tinysparse`` runs the command line."""

import sys

from tinysparse.cli import main

sys.exit(main())
