import sys

from vidflow.traffic.cli import main

sys.exit(main())
