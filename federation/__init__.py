"""ActivityPub: actors, signatures, inbox and delivery. Imports models, never server."""
