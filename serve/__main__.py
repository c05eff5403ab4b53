"""``python -m serve``: the same as the ``serve`` console script."""

import sys

from serve.cli import main

sys.exit(main())
