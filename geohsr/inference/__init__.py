"""Inference: predict batches of windows (``predictor``), stream a whole scene through
read -> tile -> predict -> blend -> write (``scene``). Importing this package is light;
torch loads with ``geohsr.inference.predictor``."""
