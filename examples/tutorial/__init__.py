"""The tutorial's small shop: an inventory, an orders service, a registry and an event."""
