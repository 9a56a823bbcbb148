"""The glue between the Snakemake rules and the pure library, one module per rule file.

A stage module turns what its rules hand over (config sections, params, stores) into the
arguments of the pure computation modules and checks run identities; the pure modules take
arrays, frames and paths and know nothing of Snakemake, config dicts or the store.
"""
