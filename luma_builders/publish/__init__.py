"""Publishing: Parquet shards and the dataset card (`export`), and the upload to the Hub (`hub`)."""
