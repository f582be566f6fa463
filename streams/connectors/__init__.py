"""Platform connectors: consumers of the engine's ``platform_update`` write-backs (`drchrono`)."""
