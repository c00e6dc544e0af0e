"""Leaked keys (SPEC §9), one home: scanner.py finds keys in files before they are committed
(`flask scan`, the `fvapp-scan` pre-commit hook); reports.py verifies GitHub's signed leak
reports, revokes each reported live key and raises the workspace's alerts. The endpoint that
receives the reports is HTTP, so it lives in the API app: fvapp/api/secret_scanning.py."""
