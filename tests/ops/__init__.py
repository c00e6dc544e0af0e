"""Operations: processes, several instances behind nginx, settings, health, timeouts, migrations, the CLI."""
