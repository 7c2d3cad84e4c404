"""Alembic migrations. Revision 0001 is the Prisma baseline; later ones are pedro-ingest's."""
