"""Repositories: the groups of server operations reachable from an AsyncClient."""
