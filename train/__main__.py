"""`python -m svit_data.train` (what torchrun runs) is `svit-train`."""

from svit_data.train.cli import main

raise SystemExit(main())
