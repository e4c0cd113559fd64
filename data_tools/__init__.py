"""bdv2.data_tools: BridgeData V2 converters and the built-in sample data (not built yet)."""
