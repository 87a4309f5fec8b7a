"""``python -m durably.bench``: the same as ``durably bench``."""

import sys

from durably.bench import main

sys.exit(main())
