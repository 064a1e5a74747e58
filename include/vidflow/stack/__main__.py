import sys

from vidflow.stack.cli import main

sys.exit(main())
