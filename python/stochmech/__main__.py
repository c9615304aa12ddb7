"""``python -m stochmech``: the command line (see :mod:`stochmech.cli`)."""

import sys

try:
    from stochmech.cli import main
except KeyboardInterrupt:  # Ctrl-C while the libraries load
    sys.stderr.write("stochmech: interrupted\n")
    sys.exit(130)

sys.exit(main())
