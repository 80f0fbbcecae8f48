"""End-to-end tests: the seeds pipeline with the real model and index, the chat (AppTest and a real
Chromium), feeds against local servers, Ray, training smoke runs and the load test."""
