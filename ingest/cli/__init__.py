"""`pedro-ingest`: one command for every process and operation.

Each command group lives in its own module and exports its commands; this module only assembles them.
User mistakes (missing setting, unreachable database) end with one line on stderr and a non-zero exit,
never a traceback.
"""

from __future__ import annotations

import click

from ingest.cli.asaas import ASAAS_COMMANDS
from ingest.cli.database import DATABASE_COMMANDS
from ingest.cli.events import EVENT_COMMANDS
from ingest.cli.periodic import PERIODIC_COMMANDS
from ingest.cli.processes import PROCESS_COMMANDS
from ingest.cli.samples import send_sample


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Webhook ingestion for Clerk and Asaas: verified receiver, durable inbox, exactly-once workers."""


_GROUPS = (PROCESS_COMMANDS, DATABASE_COMMANDS, EVENT_COMMANDS, PERIODIC_COMMANDS, ASAAS_COMMANDS)
for _command in (*(command for group in _GROUPS for command in group), send_sample):
    main.add_command(_command)
