"""Data: toy distributions sampled on the device (`toy`)."""
from ganjax.data import toy
