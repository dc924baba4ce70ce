"""python -m w2v_async.cli: the w2v-async command."""

from . import main

main()
