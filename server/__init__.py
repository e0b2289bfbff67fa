"""Voisinage's web side: Mastodon client API, OAuth, pages and the command line."""

__version__ = "0.1.0"
