"""The services (fvapp/services/, usage, leaks, rate limits), called directly."""
