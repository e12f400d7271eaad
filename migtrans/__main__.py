"""`python -m migtrans` runs the `migtrans` command (also what torchrun launches)."""

import sys

from .cli import main

sys.exit(main())
