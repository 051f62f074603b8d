"""Built-in scrapers, one module per city or feed family."""
