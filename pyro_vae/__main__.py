import os
import sys

# `python -m pyro_vae` puts the current folder first on sys.path (the `pyro-vae` script does not): drop it, so
# that a module lying in the current folder (a downloaded run folder, say) is never imported in place of an
# installed one, and both ways of starting the command find the same modules (see docs/reliability.md)
if sys.path and not sys.flags.safe_path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from .cli import main  # noqa: E402

sys.exit(main())
