"""The `throughline` command line (entry point `cli.main:main`): parse, call a use case, print."""
