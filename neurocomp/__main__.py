"""``python -m neurocomp`` = the ``neurocomp`` command."""
from neurocomp.cli.main import main

main()
