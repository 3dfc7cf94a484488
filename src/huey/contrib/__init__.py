"""Optional integrations (asyncio helpers, ...). Each module imports its own dependencies."""
