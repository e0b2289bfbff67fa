"""`make bench`: `python -m tests.bench.run [--profile default|smoke] [--out bench-results]`.

Environment: BENCH_FULL=1 adds the 1,000,000-post database; BENCH_ENGINES=sqlite (default
sqlite,postgresql); BENCH_SECONDS=10 per load measurement (and as long for its reference).
"""

import sys

from .harness import main

if __name__ == "__main__":
    sys.exit(main())
