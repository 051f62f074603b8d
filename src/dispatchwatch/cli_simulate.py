"""``dispatchwatch simulate``: serve evolving synthetic feeds on 127.0.0.1 until Ctrl-C.

Registered on the main group by ``cli.py`` (``cli.add_command(simulate)``).
"""

from __future__ import annotations

import threading

import click

from .cli_params import MAX_SPEED, FiniteFloatRange
from .simulate import FAULTS, Simulation


@click.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port on 127.0.0.1 (0 picks a free one).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the synthetic calls (each path also mixes in its own name).",
)
@click.option(
    "--speed",
    type=FiniteFloatRange(min=0, max=MAX_SPEED),
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second (60: a minute each second).",
)
def simulate(port: int, seed: int, speed: float) -> None:
    """Serve Milwaukee- and Seattle-format pages, a Socrata dataset and an ArcGIS layer that
    evolve over time, with faults on demand.

    Any path /milwaukee/NAME or /seattle/NAME is a feed of its own, and so is any Socrata
    dataset /resource/ID.json and ArcGIS layer /arcgis/rest/services/NAME/MapServer/0/query.
    Inject a fault with POST /_faults {"path": "/milwaukee/a", "fault": "http500", "count": 2}
    ("match": "resultOffset=1000" limits it to one page of a query); see GET /_stats.
    """
    sim = Simulation(port=port, seed=seed, speed=speed)
    base = sim.start()
    try:
        # Ctrl-C while the banner prints still stops the server cleanly.
        click.echo(f"Simulating dispatch feeds at {base} (speed x{speed:g}, seed {seed})")
        click.echo(f"  Milwaukee: {sim.url('milwaukee', 'mke')}")
        click.echo(f"  Seattle:   {sim.url('seattle', 'sea')}")
        click.echo(f"  Socrata:   {sim.socrata_url()}?$limit=5")
        click.echo(f"  ArcGIS:    {sim.arcgis_url()}/query?where=1%3D1&outFields=*&f=json")
        click.echo(f"  Stats:     {base}/_stats")
        click.echo(
            f"  Faults:    curl -X POST {base}/_faults -d "
            '\'{"path": "/milwaukee/mke", "fault": "http500", "count": 1}\''
        )
        click.echo(f"             ({', '.join(FAULTS)})")
        click.echo("Press Ctrl-C to stop.")
        threading.Event().wait()  # the server runs in its own thread
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        click.echo("Stopped.")
