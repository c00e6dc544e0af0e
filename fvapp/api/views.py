"""REST API v1 endpoints. (Built by the REST API issue.)"""
