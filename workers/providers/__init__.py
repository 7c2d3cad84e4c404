"""Clients of the providers' APIs (Asaas, Clerk) and the Asaas rate limiter; no database access here."""
