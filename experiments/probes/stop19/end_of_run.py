"""Stop 19 probe: what `moestat run` spends after its sweep, on a finished run directory:
importing matplotlib, the report (2000 bootstrap draws, as write_summary), the figure with
its own report (as before stop 19) and with the summary passed in; and the sum of the run's
fit_seconds column (the fits' time inside the sweep).

Run from the project root (a fresh process, so the import is cold):
    .venv/bin/python experiments/probes/stop19/end_of_run.py RUN_DIR"""

import sys
import time
from pathlib import Path

import numpy as np

from moestat.experiments.runner import report
from moestat.experiments.store import read_rows

out = Path(sys.argv[1])
t = time.perf_counter()
import matplotlib.pyplot  # noqa: E402, F401

print(f"import matplotlib        {time.perf_counter() - t:.2f} s")
from moestat.experiments.plot import save_rate_figure  # noqa: E402

t = time.perf_counter()
summary = report(out)
print(f"report                   {time.perf_counter() - t:.2f} s")
for name, kw in (("figure, own report", {}), ("figure, summary given", {"summary": summary})):
    t = time.perf_counter()
    save_rate_figure(out, Path("/tmp/end_of_run.png"), **kw)
    print(f"{name:24s} {time.perf_counter() - t:.2f} s")
fs = np.asarray(read_rows(out)["fit_seconds"], float)
reps = np.asarray(read_rows(out)["n"]).size
print(f"sum of fit_seconds       {fs.sum():.1f} s over {reps} fits")
