"""Interoperability checks: real client libraries against a real `voisinage serve`."""
