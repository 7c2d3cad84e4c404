"""`pedro-ingest`: one command for every process and operation.

Each command group lives in its own module and exports its commands; this module only assembles them.
User mistakes (missing setting, unreachable database) end with one line on stderr and a non-zero exit,
never a traceback.
"""

from __future__ import annotations

import click

from ingest.cli.database import DATABASE_COMMANDS
from ingest.cli.events import EVENT_COMMANDS
from ingest.cli.periodic import PERIODIC_COMMANDS
from ingest.cli.processes import PROCESS_COMMANDS
from ingest.cli.samples import send_sample
from ingest.cli.support import untruncated_short_help
from ingest.cli.users import USER_COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(package_name="pedro-ingest", prog_name="pedro-ingest")
def main() -> None:
    """Webhook ingestion for Clerk and Asaas: verified receiver, durable inbox, exactly-once workers."""


COMMANDS = (*PROCESS_COMMANDS, *DATABASE_COMMANDS, *EVENT_COMMANDS, *PERIODIC_COMMANDS, *USER_COMMANDS, send_sample)
for _command in COMMANDS:
    main.add_command(_command)
untruncated_short_help(main)
