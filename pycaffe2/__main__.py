import sys

from pycaffe2.cli import main

sys.exit(main())
