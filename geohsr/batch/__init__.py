"""Batch reconstruction of many scenes on a dask.distributed cluster."""
