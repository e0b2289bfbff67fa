"""Storage rows and the rules both the client API and federation need (visibility, ids, events)."""
