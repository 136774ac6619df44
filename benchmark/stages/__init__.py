"""One module per workflow stage (generate, score, FID, previews, ...), each called by the CLI."""
