"""The glue between the Snakemake rules and the pure library, one module per rule file.

A stage module reads what its rules hand over (stores, options, wildcards), checks run
identities and calls the pure computation modules; those know nothing of files or configs.
"""
