"""bdv2.data_tools: BridgeData V2 converters (raw -> numpy -> TFRecord, raw -> TFRecord), inspect/stats, and
the built-in sample data. Modules: raw (reader, restricted unpickler), layout (trees, split, shards, atomic
writes), schema (the TFRecord schema shared with the trainer), convert, sample, summary, cli (`bdv2 data`);
identify and releases (which release a tree is; releases.toml holds the fingerprints), episodes (one reader of
whole episodes), check (content health), contract (the action contract, read by the trainer too), view (HTML
pages and contact sheets), report (their output)."""
