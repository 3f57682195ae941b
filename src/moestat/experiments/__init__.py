"""The experiment engine: configs, sweeps over (setting, n, replicate block) cells, storage
and reports."""
