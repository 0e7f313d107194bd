"""python -m learning [--every 100] [--feedback URL] [-- local_runner.py args]"""

import sys

from learning.worker import main

sys.exit(main())
