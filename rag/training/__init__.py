"""Training, export and calibration of the span reader (torch is imported only here, never when serving)."""
