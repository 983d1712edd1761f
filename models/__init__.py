"""Model cards, bundled weights, and the recipes that make them (run from a checkout)."""
