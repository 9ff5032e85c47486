"""The client example: ``service.py`` and ``client.py``."""
