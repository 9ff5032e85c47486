"""The registry of the discovery example: the reference registry on port 5000.

The same as ``python -m gemstone_aio.registry --port 5000``. ``PORT`` overrides the port.
"""

import os

from gemstone_aio.registry import main

if __name__ == "__main__":
    main(["--host", "127.0.0.1", "--port", os.environ.get("PORT", "5000")])
