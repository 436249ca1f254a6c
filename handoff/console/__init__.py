"""The agent console: a Sanic web app where agents claim handoff tickets and chat with customers."""
