"""The `fleetops` program: a plain `logs parse` runs at once (`logs.parse.command`), everything
else through the CLI (`fleetops.cli`)."""

import sys


def main() -> None:
    """Entry point of the `fleetops` script and of `python -m fleetops`."""
    if sys.argv[1:3] == ["logs", "parse"]:
        from fleetops.logs.parse.command import parse_file, plain

        if (request := plain(sys.argv[3:])) is not None:
            parse_file(request[0], content_only=request[1])
            return
    from fleetops.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
