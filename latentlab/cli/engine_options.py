"""The ``--engine`` / ``--ray-*`` click options shared by ``project``, ``evaluate`` and
``directions fit``, so that their flags do not drift apart."""

from __future__ import annotations

import click

ENGINE_HELP = ("local: this process. ray: a Ray cluster (pip install 'latentlab[ray]'); the output "
               "folder must be a path every node of the cluster sees (a shared file system).")


def engine_options(f):
    """``--engine local|ray``, ``--ray-address``, ``--ray-workers``, ``--threads-per-worker``."""
    f = click.option("--threads-per-worker", type=click.IntRange(min=1), default=None,
                     help="CPU threads per worker (torch.set_num_threads) [ray default: 2 on CPU, "
                          "4 beside a GPU; local default: torch's].")(f)
    f = click.option("--ray-workers", type=click.IntRange(min=1), default=None,
                     help="Ray workers (actors holding the models) [default: one per GPU on CUDA, "
                          "else the cluster's CPUs divided by --threads-per-worker].")(f)
    f = click.option("--ray-address", default=None, metavar="ADDRESS",
                     help="Ray cluster to join: 'auto' (the cluster started with `ray start` on this "
                          "machine), 'ray://host:10001' or 'host:6379' [default: start a local Ray "
                          "for this run].")(f)
    f = click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                     help=ENGINE_HELP)(f)
    return f
