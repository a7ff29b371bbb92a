"""One module per vendor: build the HTTP request, parse the reply. No I/O here."""
