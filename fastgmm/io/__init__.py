"""Reading and writing fitted models (safe, versioned, no pickle)."""
