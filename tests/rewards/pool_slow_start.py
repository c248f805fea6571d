"""A pool handler whose import takes a second, to kill a worker while it starts."""

import time

from pool_handlers import run  # noqa: F401

time.sleep(1.0)
