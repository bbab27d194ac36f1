"""Devices a blob can live on. Each is one module with one class."""
