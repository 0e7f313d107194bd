"""python -m serving.learning [--every 100] [--feedback URL] [-- local_runner.py args]"""

import sys

from serving.learning.worker import main

sys.exit(main())
