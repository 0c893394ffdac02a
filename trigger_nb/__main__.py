"""``python -m trigger_nb``: the ``trigger-nb`` command line."""

from trigger_nb._cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
