"""Channel connectors: REST and socket.io with input checks, and the web chat page."""
