"""The `manage.py routing ...` command line: one Django command, one module per subcommand."""
