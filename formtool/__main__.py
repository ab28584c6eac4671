from formtool.cli import cli

cli()
