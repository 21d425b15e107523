"""Inference: predict batches of windows (``predictor``), stream a whole scene through
read -> tile -> predict -> blend -> write (``scene``), or compute it in independent chunks
(``chunked``: the accessor's dask graph; ``chunk_tasks``: chunks written by dask workers)
with the model loaded once per process (``model_cache``). Importing this package is light;
torch loads with ``geohsr.inference.predictor``."""
