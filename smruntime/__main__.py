import sys

from smruntime.cli import main

sys.exit(main())
