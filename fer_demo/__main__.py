"""`python -m fer_demo predict PHOTO...`: the command line (cli.py), as the installed `fer-demo` runs it."""

import sys

from .cli import main

sys.exit(main())
