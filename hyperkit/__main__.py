import sys

from hyperkit.cli import main

sys.exit(main())
