"""``python -m gemstone_aio`` runs the ``gemstone`` command line."""

from .cli import main

main()
