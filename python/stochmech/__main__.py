import sys

from stochmech.cli import main

sys.exit(main())
