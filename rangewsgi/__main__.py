"""``python -m rangewsgi [DIR | module:app] [--host H] [--port P]``."""

from .demo import main

main()
