"""``python -m fastgmm``: the fastgmm command line (see :mod:`fastgmm.cli`)."""

import sys

from fastgmm.cli import main

if __name__ == "__main__":
    sys.exit(main())
