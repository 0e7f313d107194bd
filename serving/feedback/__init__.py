"""The feedback store: people's corrected tags, kept durably until they become training data."""
