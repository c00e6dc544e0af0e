"""Domain services: plain values in, results or a DomainError out. No HTTP here."""
