"""Inbox handlers, grouped by object lifecycle: follow.py, note.py (Create/Update/Delete/Announce of
notes, Update/Delete of actors), like.py. Each registers itself with `dispatch.handles`."""
