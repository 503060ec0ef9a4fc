"""``python -m caffemem`` is the ``caffemem`` command."""

from .cli import main

raise SystemExit(main())
