"""``python -m caffemem`` is the ``caffemem`` command."""

import os
import sys

from .cli import main

code = main()
# the process ends here: what the command built (millions of small objects for a big net)
# is not torn down one object at a time at exit, a twentieth of a report's time; the
# output is flushed first, and a flush that fails (a closed pipe) takes the usual way out
try:
    sys.stdout.flush()
    sys.stderr.flush()
except BaseException:
    raise SystemExit(code)
os._exit(code)
