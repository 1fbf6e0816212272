"""`python -m sansio_wss`: starts the command line (`sansio_wss.cli`), which is not part of the core."""

from sansio_wss.cli import main

raise SystemExit(main())
