"""dtg: Korean digital-tachograph (DTG) drive logs to validated Parquet, LSTM models and anomaly scores."""

__version__ = "0.1.0"
