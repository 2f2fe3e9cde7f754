"""``python -m latentlab.cli`` = the ``latentlab`` command."""

from . import main

if __name__ == "__main__":
    main(prog_name="latentlab")
