"""``python -m memcubed``: the command line."""

from memcubed.interfaces.cli.app import main

main()
