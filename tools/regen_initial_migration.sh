#!/usr/bin/env bash
# Until the first release, the schema is one migration: regenerate it from the models after a change.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f models/migrations/versions/*_initial_schema.py
.venv/bin/python tools/make_migration.py initial schema >/dev/null 2>&1
f=$(ls models/migrations/versions/*_initial_schema.py)
.venv/bin/python - "$f" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
# Alembic cannot autogenerate expression indexes: add the case-insensitive username index by hand.
anchor = "    op.create_table('households',"
s = s.replace(anchor, "    op.create_index('ix_actors_username_domain', 'actors', [sa.text('lower(username)'), 'domain'], unique=True)\n" + anchor, 1)
s = s.replace("    op.drop_table('actors')", "    op.drop_index('ix_actors_username_domain', table_name='actors')\n    op.drop_table('actors')", 1)
open(p, "w").write(s)
PY
echo "regenerated $f"
