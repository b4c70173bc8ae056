"""sampledata package."""
