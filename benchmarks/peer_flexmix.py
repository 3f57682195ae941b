"""moestat fit vs R's flexmix on users' data (moestat/bench/peer.py): prints each case as it
finishes, then the markdown table of docs/performance.md and the totals.

    python benchmarks/peer_flexmix.py [--small]     (--small: without the n = 1e4, 1e5 cases)
"""

import json
import sys

from moestat.bench import peer

if __name__ == "__main__":
    out = peer.run(on_result=lambda row: print(peer.line(row), flush=True),
                   large="--small" not in sys.argv)
    print(out["note"] or "")
    print(peer.markdown(out))
    print(json.dumps(out["totals"], indent=1))
