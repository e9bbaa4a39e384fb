"""``python -m limnos``: the same as the ``limnos`` command."""

from limnos.cli.main import main

if __name__ == "__main__":
    main()
